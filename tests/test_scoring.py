"""Precision, recall and F1 are computed one way for NER, themes and entity linking."""

from pipeline.nlp.scoring import precision_recall_f1


def test_scores_count_hits_among_answers_and_gold_items() -> None:
    # 3 of 4 answers right, 6 gold items: P 0.75, R 0.5, F1 0.6
    assert precision_recall_f1(3, 4, 6) == {"precision": 0.75, "recall": 0.5, "f1": 0.6}


def test_nothing_predicted_or_expected_scores_zero_for_labels() -> None:
    assert precision_recall_f1(0, 0, 5) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_nothing_to_find_and_nothing_found_can_count_as_perfect() -> None:
    # entity linking: a label with no pairs to group, and none grouped, is right
    assert precision_recall_f1(0, 0, 0, empty=1.0) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
