"""Specification of the Swedish NER: corpus reading, the held-out split, annotation, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from pipeline.nlp.ner import (
    DEFAULT_NER_MODEL,
    SCORED_LABELS,
    NerModelMissingError,
    annotate,
    evaluate,
    load_ner,
    read_jsonl,
)
from pipeline.nlp.ner_data import (
    DEFAULT_CONFIG,
    DEFAULT_DATA_DIR,
    build_corpora,
    guess_spaces,
    io_spans,
    iob2_spans,
    join_tokens,
    read_corpora,
    read_talbanken,
    read_webbnyheter,
    split_of,
    split_sentences,
    train_ner,
)

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data" / "ner"
CONFIG = REPO / "pipeline" / "nlp" / "ner.cfg"

needs_data = pytest.mark.skipif(
    not DATA_DIR.is_dir(), reason=f"NER corpora not available at {DATA_DIR}"
)
needs_model = pytest.mark.skipif(
    not DEFAULT_NER_MODEL.is_dir(), reason=f"no trained model at {DEFAULT_NER_MODEL}"
)

SENTENCES = [
    "Hyresgästföreningen södra Skåne och Malmö stad startar ett projekt i Rosengård, "
    "säger Karin Holm.",
    "Stockholms stadsmission och Svenska kyrkan öppnar ett nytt härbärge i Husby i december.",
    "– Vi ser att hemlösheten ökar, säger Anna Lindqvist, verksamhetschef på Stadsmissionen "
    "i Göteborg.",
    "Regeringen ger Boverket i uppdrag att kartlägga trångboddheten i Sverige.",
]

WEBBNYHETER_SAMPLE = (
    "Gunhild\tPER\nWestman\tPER\n,\t0\ntidigare\t0\nlektor\t0\nvid\t0\n"
    "Uppsala\tORG\nuniversitet\tORG\n,\t0\nbor\t0\ni\t0\nLund\tLOC\n.\t0\n"
    "\n"
    "Hon    0\nsa     0\n:      0\n”      0\nJag    0\nälskar 0\n"
    "Boverket   ORG\n”      0\n(      0\ni      0\nvåras  0\n)      0\n.      0\n"
)

TALBANKEN_SAMPLE = """\
# newdoc id = P900
# sent_id = P900-0001
# text = Statens invandrarverk (SIV) flyttar till Norrköping.
1\tStatens\tB-ORG\t-\t-
2\tinvandrarverk\tI-ORG\t-\t-
3\t(\tO\t-\t-
4\tSIV\tB-ORG\t-\t-
5\t)\tO\t-\t-
6\tflyttar\tO\t-\t-
7\ttill\tO\t-\t-
8\tNorrköping\tB-LOC\t-\t-
9\t.\tO\t-\t-

# sent_id = P900-0002
# text = Olof Palme och Ingvar Carlsson talade.
1\tOlof\tB-PER\t-\t-
2\tPalme\tI-PER\t-\t-
3\toch\tO\t-\t-
4\tIngvar\tB-PER\t-\t-
5\tCarlsson\tI-PER\t-\t-
6\ttalade\tO\t-\t-
7\t.\tO\t-\t-

"""


def entity_texts(sentence) -> list[tuple[str, str]]:
    """Surface text and label of each span, for readable assertions."""
    return [(" ".join(sentence.tokens[s:e]), label) for s, e, label in sentence.spans]


def test_io_tags_of_adjacent_tokens_with_the_same_label_form_one_entity() -> None:
    tags = ["PER", "PER", None, "ORG", "ORG", "LOC", None]
    assert io_spans(tags) == [(0, 2, "PER"), (3, 5, "ORG"), (5, 6, "LOC")]


def test_iob2_b_tag_starts_a_new_entity_even_after_the_same_label() -> None:
    tags = ["B-PER", "I-PER", "B-PER", "O", "I-LOC", "I-LOC"]
    assert iob2_spans(tags) == [(0, 2, "PER"), (2, 3, "PER"), (4, 6, "LOC")]


def test_webbnyheter_reader_accepts_tab_or_space_columns_and_rebuilds_text(
    tmp_path: Path,
) -> None:
    path = tmp_path / "webbnyheter.tsv"
    path.write_text(WEBBNYHETER_SAMPLE, encoding="utf-8")
    first, second = read_webbnyheter(path)
    assert first.text == "Gunhild Westman, tidigare lektor vid Uppsala universitet, bor i Lund."
    assert entity_texts(first) == [
        ("Gunhild Westman", "PER"),
        ("Uppsala universitet", "ORG"),
        ("Lund", "LOC"),
    ]
    assert second.text == "Hon sa: ”Jag älskar Boverket” (i våras)."
    assert entity_texts(second) == [("Boverket", "ORG")]


def test_talbanken_reader_keeps_the_original_spacing_and_splits_by_document(
    tmp_path: Path,
) -> None:
    path = tmp_path / "talbanken.iob2"
    path.write_text(TALBANKEN_SAMPLE, encoding="utf-8")
    first, second = read_talbanken(path)
    assert first.text == "Statens invandrarverk (SIV) flyttar till Norrköping."
    assert entity_texts(first) == [
        ("Statens invandrarverk", "ORG"),
        ("SIV", "ORG"),
        ("Norrköping", "LOC"),
    ]
    assert entity_texts(second) == [("Olof Palme", "PER"), ("Ingvar Carlsson", "PER")]
    assert first.split_key == second.split_key
    assert first.id != second.id


def test_guessed_spacing_follows_swedish_punctuation() -> None:
    tokens = ["Det", "kostar", "5", "%", "(", "mer", ")", ",", "”", "sa", "han", "”", "."]
    assert join_tokens(tokens, guess_spaces(tokens)) == "Det kostar 5% (mer), ”sa han”."


def test_split_is_a_stable_function_of_the_key_in_roughly_80_10_10() -> None:
    keys = [f"webbnyheter:Mening nummer {i} om Malmö." for i in range(3000)]
    first = [split_of(key) for key in keys]
    assert first == [split_of(key) for key in keys]
    shares = {name: first.count(name) / len(keys) for name in ("train", "dev", "test")}
    assert 0.77 < shares["train"] < 0.83
    assert 0.08 < shares["dev"] < 0.12
    assert 0.08 < shares["test"] < 0.12


@needs_data
def test_split_of_the_real_corpora_is_disjoint_by_sentence_and_by_document() -> None:
    parts = split_sentences(read_corpora(DATA_DIR))
    assert sum(len(p) for p in parts.values()) == 6885 + 4303 + 504
    ids = {name: {s.id for s in part} for name, part in parts.items()}
    keys = {name: {s.split_key for s in part} for name, part in parts.items()}
    for one, other in [("train", "dev"), ("train", "test"), ("dev", "test")]:
        assert not ids[one] & ids[other]
        assert not keys[one] & keys[other]
    assert all(parts[name] for name in ("train", "dev", "test"))


@needs_data
def test_build_corpora_is_reproducible_and_test_offsets_cover_whole_words(tmp_path: Path) -> None:
    counts = build_corpora(DATA_DIR, tmp_path / "a")
    assert build_corpora(DATA_DIR, tmp_path / "b") == counts
    test_a, test_b = (tmp_path / d / "test.jsonl" for d in ("a", "b"))
    assert test_a.read_bytes() == test_b.read_bytes()
    vocab = spacy.blank("sv").vocab
    for split, count in counts.items():
        docs = list(DocBin().from_disk(tmp_path / "a" / f"{split}.spacy").get_docs(vocab))
        assert len(docs) == count
    records = list(read_jsonl(test_a))
    assert len(records) == counts["test"]
    for record in records:
        text = record["text"]
        for start, end, label in record["entities"]:
            assert label in SCORED_LABELS
            assert text[start:end].strip() == text[start:end] != ""
            assert start == 0 or not text[start - 1].isalnum()
            assert end == len(text) or not text[end].isalnum()


def rule_based_nlp() -> spacy.Language:
    """A pipeline whose predictions are fixed by patterns, so scores can be worked out by hand."""
    nlp = spacy.blank("sv")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [
            {"label": "PER", "pattern": "Karin Holm"},
            {"label": "LOC", "pattern": "Malmö"},
            {"label": "LOC", "pattern": "Rosengård"},
            {"label": "MISC", "pattern": "Trygghetsprojektet"},
        ]
    )
    return nlp


def test_evaluate_scores_exact_spans_per_label_and_ignores_misc() -> None:
    text = "Malmö stad startar Trygghetsprojektet i Rosengård, säger Karin Holm."
    gold = [[0, 10, "ORG"], [40, 49, "LOC"], [57, 67, "PER"], [19, 37, "MISC"]]
    assert [text[s:e] for s, e, _ in gold] == [
        "Malmö stad",
        "Rosengård",
        "Karin Holm",
        "Trygghetsprojektet",
    ]
    scores = evaluate(rule_based_nlp(), [{"id": "1", "text": text, "entities": gold}])
    assert scores["labels"]["PER"] == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 1, "fp": 0, "fn": 0}
    )
    assert scores["labels"]["ORG"] == pytest.approx(
        {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 1}
    )
    assert scores["labels"]["LOC"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "tp": 1, "fp": 1, "fn": 0}
    )
    assert scores["overall"] == pytest.approx(
        {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "tp": 2, "fp": 1, "fn": 1}
    )
    assert scores["words"] == 9
    assert scores["words_per_second"] > 0


def test_evaluate_lists_each_wrong_span_with_what_went_wrong() -> None:
    text = "Karin Holm besökte Rosengård och Malmö stad. Hyresgästföreningen kom också."
    gold = [
        [0, 5, "PER"],  # the prediction "Karin Holm" has other edges
        [19, 28, "ORG"],  # predicted as LOC: right edges, wrong label
        [33, 43, "ORG"],  # "Malmö" predicted as LOC: neither edges nor label
        [45, 64, "ORG"],  # not predicted at all
    ]
    errors: list[dict] = []
    evaluate(rule_based_nlp(), [{"id": "doc", "text": text, "entities": gold}], errors=errors)
    assert [(e["kind"], e["text"], e.get("expected", {}).get("text")) for e in errors] == [
        ("boundary", "Karin Holm", "Karin"),
        ("label", "Rosengård", "Rosengård"),
        ("label and boundary", "Malmö", "Malmö stad"),
        ("missed", "Hyresgästföreningen", None),
    ]
    assert errors[1]["context"].startswith("Karin Holm besökte [Rosengård] och Malmö")
    assert all(e["id"] == "doc" for e in errors)


def test_a_prediction_no_gold_span_touches_is_spurious() -> None:
    text = "Det regnade i Malmö."
    errors: list[dict] = []
    scores = evaluate(rule_based_nlp(), [{"id": "1", "text": text, "entities": []}], errors=errors)
    assert [(e["kind"], e["label"], e["text"]) for e in errors] == [("spurious", "LOC", "Malmö")]
    assert scores["overall"]["fp"] == 1


@needs_model
def test_evaluate_ner_writes_the_errors_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    text = "Karin Holm talade i Malmö."  # the shipped pipeline: PER, and Malmö as a place
    path = tmp_path / "set.jsonl"
    path.write_text(
        json.dumps({"id": "a", "text": text, "entities": [[0, 10, "PER"], [20, 25, "ORG"]]}) + "\n",
        encoding="utf-8",
    )
    errors = tmp_path / "errors.jsonl"
    result = CliRunner().invoke(cli, ["evaluate-ner", str(path), "--errors", str(errors)])
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    assert [(e["kind"], e["text"], e["expected"]["label"]) for e in written] == [
        ("label", "Malmö", "ORG")
    ]
    assert json.loads(result.output)["labels"]["PER"]["tp"] == 1


def test_load_ner_on_a_missing_directory_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(NerModelMissingError, match="pipeline train-ner"):
        load_ner(tmp_path / "ingen-modell")


def test_annotate_keeps_only_scored_labels_in_input_order() -> None:
    texts = ["Trygghetsprojektet i Malmö.", "Ingen nämns här.", "Karin Holm talar."]
    results = list(annotate(rule_based_nlp(), texts, batch_size=2))
    assert [[(e.text, e.label) for e in ents] for ents in results] == [
        [("Malmö", "LOC")],
        [],
        [("Karin Holm", "PER")],
    ]


@needs_model
def test_trained_model_returns_offsets_into_the_given_text() -> None:
    nlp = load_ner()
    results = list(annotate(nlp, SENTENCES))
    assert len(results) == len(SENTENCES)
    assert any(results), "the trained model found no entity in any sentence"
    for text, entities in zip(SENTENCES, results, strict=True):
        for entity in entities:
            assert text[entity.start : entity.end] == entity.text
            assert entity.label in SCORED_LABELS


@needs_model
def test_shipped_model_is_small_licensed_and_has_its_card_and_metrics() -> None:
    size = sum(p.stat().st_size for p in DEFAULT_NER_MODEL.rglob("*") if p.is_file())
    assert size < 50 * 1024 * 1024
    nlp = load_ner(rules=False)
    assert nlp.meta["license"] == "CC BY-SA 4.0"
    assert nlp.pipe_names == ["tok2vec", "ner"]
    metrics = json.loads((DEFAULT_NER_MODEL / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["test"]["labels"]) == set(SCORED_LABELS)
    assert (DEFAULT_NER_MODEL / "MODEL_CARD.md").is_file()


def test_train_ner_defaults_point_at_the_shipped_config_shared_data_and_models_dir() -> None:
    assert DEFAULT_CONFIG == CONFIG
    assert DEFAULT_CONFIG.is_file()
    assert DEFAULT_DATA_DIR == DATA_DIR
    assert DEFAULT_NER_MODEL == REPO / "models" / "ner"


def write_tiny_corpora(data_dir: Path) -> None:
    """Sixty short sentences per corpus, enough that every split of the hash gets some."""
    people = ["Karin Holm", "Ali Hassan", "Eva Berg", "Jonas Ek", "Sara Lind", "Omar Said"]
    places = ["Rosengård", "Husby", "Tensta", "Gårdsten", "Hammarkullen"]
    orgs = ["Boverket", "Hyresgästföreningen", "Stadsmissionen", "Migrationsverket"]
    webb: list[str] = []
    talb: list[str] = []
    for i in range(60):
        per, loc, org = people[i % 6], places[i % 5], orgs[i % 4]
        rows = [f"{word}\tPER" for word in per.split()]
        rows += ["besökte\t0", f"{loc}\tLOC", "med\t0", f"{org}\tORG", f"{i}\t0", ".\t0"]
        webb.append("\n".join(rows) + "\n")
        tokens = [org, "öppnar", "kontor", "nummer", str(i), "i", loc, "."]
        tags = ["B-ORG", "O", "O", "O", "O", "O", "B-LOC", "O"]
        talb += [f"# newdoc id = T{i}", f"# sent_id = T{i}-1"]
        talb.append("# text = " + " ".join(tokens[:-1]) + ".")
        talb += [f"{n}\t{tokens[n - 1]}\t{tags[n - 1]}\t-\t-" for n in range(1, 9)]
        talb.append("")
    data_dir.mkdir()
    (data_dir / "webbnyheter2012-train.tsv").write_text("\n".join(webb), encoding="utf-8")
    (data_dir / "uner-talbanken-train.iob2").write_text("\n".join(talb), encoding="utf-8")
    (data_dir / "uner-talbanken-dev.iob2").write_text("", encoding="utf-8")


def test_train_ner_installs_a_loadable_model_with_metrics_and_keeps_the_card(
    tmp_path: Path,
) -> None:
    data_dir, output = tmp_path / "data", tmp_path / "model"
    write_tiny_corpora(data_dir)
    output.mkdir()
    (output / "MODEL_CARD.md").write_text("# Kort\n", encoding="utf-8")
    (output / "gammal-fil.txt").write_text("från en äldre träning\n", encoding="utf-8")
    overrides = {"training.max_steps": 30, "training.eval_frequency": 10}
    press_dir = tmp_path / "press"
    press_dir.mkdir()
    (press_dir / "a.md").write_text(
        "# Kommunen bygger\n\nI kommunen byggs det. Hela kommunen deltar, och kommunen växer.\n",
        encoding="utf-8",
    )
    trained = train_ner(
        CONFIG, data_dir, output, overrides=overrides, press_dir=press_dir, domain_set=None
    )
    assert trained == output
    assert (output / "common_words.txt").read_text(encoding="utf-8").split() == ["kommunen"]
    assert not (output / "gammal-fil.txt").exists()
    assert (output / "MODEL_CARD.md").read_text(encoding="utf-8") == "# Kort\n"
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["split_sentences"]["test"] > 0
    assert metrics["test"]["documents"] == metrics["split_sentences"]["test"]
    assert "test_with_rules" in metrics
    nlp = load_ner(output)
    assert nlp.get_pipe("ner").labels == ("LOC", "ORG", "PER")
