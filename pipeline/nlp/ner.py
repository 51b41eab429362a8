"""Named entities (people, organisations, places) in Swedish text with the project's spaCy model.

No Swedish spaCy pipeline can be downloaded here, so the project trains its own
(``pipeline train-ner``, see ``pipeline/nlp/ner_data.py``) and ships it in ``models/ner``. The
model also predicts MISC, which helps it keep products and events out of ORG, but only PER, ORG
and LOC are handed on and scored: they are what the analysts link and map.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.nlp.scoring import precision_recall_f1
from pipeline.nlp.versions import DEFAULT_NER_MODEL

if TYPE_CHECKING:
    import spacy

SCORED_LABELS = ("PER", "ORG", "LOC")
#: Where records that name a ``path`` instead of carrying their ``text`` find it: the shared data
#: directory beside the repository (texts from there are never copied into the project).
SHARED_DIR = Path(__file__).resolve().parents[3] / "shared"


class NerModelMissingError(FileNotFoundError):
    """The trained NER pipeline is not where it was looked for."""


@dataclass(frozen=True)
class Entity:
    """A recognised name: character offsets into the annotated text, label and surface form."""

    start: int
    end: int
    label: str
    text: str


def load_ner(model_dir: Path = DEFAULT_NER_MODEL, *, rules: bool = True) -> spacy.Language:
    """Load the trained pipeline, or explain how to produce it if it is not there.

    With ``rules`` (the default, and what the batch uses) the gazetteer and the edge rules of
    :mod:`pipeline.nlp.ner_rules` run after the model; without, the bare model, as trained.
    """
    if not (model_dir / "config.cfg").is_file():
        raise NerModelMissingError(
            f"No trained NER model in {model_dir}. Train it with `pipeline train-ner` "
            "(it reads ../shared/data/ner and writes models/ner)."
        )
    import spacy  # here, not at the top: what only reads entities or scores has no need of it

    nlp = spacy.load(model_dir)
    if rules:
        from pipeline.nlp.ner_rules import add_rules

        add_rules(nlp, model_dir)
    return nlp


def annotate(
    nlp: spacy.Language, texts: Iterable[str], *, batch_size: int = 64, n_process: int = 1
) -> Iterator[list[Entity]]:
    """PER/ORG/LOC entities of each text, in input order, offsets into that text."""
    for doc in nlp.pipe(texts, batch_size=batch_size, n_process=n_process):
        yield [
            Entity(ent.start_char, ent.end_char, ent.label_, ent.text)
            for ent in doc.ents
            if ent.label_ in SCORED_LABELS
        ]


Span = tuple[int, int, str]

#: Characters of text shown on each side of an error span.
ERROR_CONTEXT = 40


def span_errors(record: dict[str, Any], gold: set[Span], found: set[Span]) -> list[dict[str, Any]]:
    """The spans of one document that scored wrong, each with what went wrong.

    ``kind`` is "label" (right edges, wrong label), "boundary" (right label, other edges),
    "label and boundary" (a prediction overlapping a gold span with neither right), "spurious"
    (a prediction overlapping no gold span) or "missed" (a gold span no wrong prediction
    overlaps). An error of the first three kinds is reported once, from the prediction, with the
    gold span it should have been as ``expected``.
    """
    text = record["text"]

    def described(kind: str, span: Span, expected: Span | None = None) -> dict[str, Any]:
        start, end, label = span
        before = text[max(0, start - ERROR_CONTEXT) : start].replace("\n", " ")
        after = text[end : end + ERROR_CONTEXT].replace("\n", " ")
        error = {"id": record.get("id"), "kind": kind, "label": label, "text": text[start:end]}
        error.update(start=start, end=end, context=f"{before}[{text[start:end]}]{after}")
        if expected is not None:
            error["expected"] = {"text": text[expected[0] : expected[1]], "label": expected[2]}
        return error

    def overlapping(span: Span, others: set[Span]) -> list[Span]:
        return sorted(o for o in others if o[0] < span[1] and span[0] < o[1])

    wrong, missed = found - gold, gold - found
    errors = []
    for span in sorted(wrong):
        near = overlapping(span, missed)
        if not near:
            errors.append(described("spurious", span))
            continue
        # the gold span it was meant to be: same edges first, then same label
        expected = min(near, key=lambda g: (g[:2] != span[:2], g[2] != span[2], g))
        edges, label = expected[:2] == span[:2], expected[2] == span[2]
        kind = "label" if edges else "boundary" if label else "label and boundary"
        errors.append(described(kind, span, expected))
    for span in sorted(missed):
        if not overlapping(span, wrong):
            errors.append(described("missed", span))
    return errors


class EvaluationTextError(ValueError):
    """A record points at a text that is missing or no longer the one that was annotated."""


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON Lines file, skipping blank lines."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def with_texts(records: Iterable[dict[str, Any]], shared_dir: Path = SHARED_DIR) -> Iterator[dict]:
    """Fill in ``text`` for records that store ``path``, ``sha256`` and ``limit`` instead.

    The hand-annotated domain set (``corpus/labels/ner-domain.jsonl``) annotates real press
    releases that may not be copied into the project, so it keeps offsets and a checksum and reads
    the text from ``../shared``. A changed file would silently shift every offset, hence the
    checksum; a missing one is an error rather than a skipped document, so a score is never
    computed on part of the set without anyone noticing.
    """
    for record in records:
        if "text" in record:
            yield record
            continue
        source = shared_dir / record["path"]
        if not source.is_file():
            raise EvaluationTextError(
                f"{record['id']}: {source} not found (the domain set reads its texts from "
                f"../shared beside the repository)"
            )
        text = source.read_text(encoding="utf-8")
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != record["sha256"]:
            raise EvaluationTextError(
                f"{record['id']}: {source} has changed since it was annotated (SHA-256 differs)"
            )
        if record.get("limit") is not None:
            text = text[: record["limit"]]
        yield {**record, "text": text}


def _scores(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    return {**precision_recall_f1(tp, tp + fp, tp + fn), "tp": tp, "fp": fp, "fn": fn}


def evaluate(
    nlp: spacy.Language,
    examples: Iterable[dict[str, Any]],
    *,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Exact-span precision, recall and F1 per label and micro-averaged, plus throughput.

    ``examples`` use the evaluation format ``{"id", "text", "entities": [[start, end, label]]}``.
    A prediction counts only if start, end and label all match, so boundary errors count twice
    (a false positive and a false negative), which is the strict CoNLL convention. Labels other
    than PER/ORG/LOC are ignored on both sides. Words are whitespace-separated, so the speed
    figure does not flatter the model by counting punctuation. Given a list as ``errors``, every
    wrong or missed span is added to it (see :func:`span_errors`), for whoever fixes the
    gazetteer or the rules next.
    """
    records = list(examples)
    texts = [record["text"] for record in records]
    started = time.perf_counter()
    predictions = list(annotate(nlp, texts))
    seconds = time.perf_counter() - started
    counts = {label: [0, 0, 0] for label in SCORED_LABELS}
    for record, entities in zip(records, predictions, strict=True):
        gold = {(s, e, lab) for s, e, lab in record["entities"] if lab in SCORED_LABELS}
        found = {(ent.start, ent.end, ent.label) for ent in entities}
        for span in found | gold:
            tally = counts[span[2]]
            tally[0 if span in found and span in gold else 1 if span in found else 2] += 1
        if errors is not None:
            errors.extend(span_errors(record, gold, found))
    words = sum(len(text.split()) for text in texts)
    total = [sum(tally[i] for tally in counts.values()) for i in range(3)]
    return {
        "labels": {label: _scores(*tally) for label, tally in counts.items()},
        "overall": _scores(*total),
        "documents": len(records),
        "words": words,
        "seconds": round(seconds, 3),
        "words_per_second": round(words / seconds) if seconds else 0,
    }
