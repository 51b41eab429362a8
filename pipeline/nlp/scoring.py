"""Precision, recall and F1 from counts: one definition for every evaluation in the project.

NER spans, theme labels and entity-linking pairs are counted differently, but once counted they
are scored the same way; keeping the arithmetic here means a zero-division rule or a rounding
change cannot make two reports disagree.
"""

from __future__ import annotations


def precision_recall_f1(
    correct: int, predicted: int, expected: int, *, empty: float = 0.0
) -> dict[str, float]:
    """Precision, recall and F1 (rounded to 4 places) of ``correct`` hits among ``predicted``
    answers, against ``expected`` gold items. ``empty`` is the precision or recall given when
    nothing was predicted or expected (0 for labels, 1 for "no pairs to find, none found")."""
    precision = correct / predicted if predicted else empty
    recall = correct / expected if expected else empty
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}
