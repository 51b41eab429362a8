"""NER benchmark: the shipped model, alone and with the rules after it, on five sets.

* **news-dev** and **news-test**: the dev and test splits of the NER corpora
  (``pipeline.nlp.ner_data``; Webbnyheter 2012 and UNER Talbanken sentences). Dev was used to
  choose settings and rules; test never was.
* **domain-dev**: the 29 documents of ``tests/fixtures/entities`` (sample-site pages and texts
  written for the project), used while writing the rules. It was written alongside the
  gazetteer, so it flatters the gazetteer.
* **gov-dev**: ``corpus/labels/ner-domain-dev.jsonl``, 17 real government press releases on the
  users' topics, annotated by hand with the same guide as domain-test. Unlike domain-dev it was
  not written with the gazetteer in mind, so it is the development set for the rules.
* **domain-test**: ``corpus/labels/ner-domain.jsonl``, 27 real press releases and blog posts
  annotated by hand after the gazetteer was written (texts read from ``../shared``).

Each set is scored with exact spans (PER, ORG, LOC) for three pipelines: the model only, with
the gazetteer ruler, and with the gazetteer ruler and the edge rules (what the batch uses).
Speed is words per second in one process on 300 press releases (whitespace-separated words),
the median of three passes. Results go to ``bench/results/ner.json`` and ``ner.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import spacy

from bench import write_results
from pipeline.config import REPO_ROOT
from pipeline.nlp.ner import (
    DEFAULT_NER_MODEL,
    SCORED_LABELS,
    evaluate,
    load_ner,
    read_jsonl,
    with_texts,
)
from pipeline.nlp.ner_data import (
    DEFAULT_DATA_DIR,
    evaluation_record,
    read_corpora,
    split_sentences,
    to_doc,
)
from pipeline.nlp.ner_rules import add_rules
from pipeline.nlp.themes import DEFAULT_PRESS_DIR

RESULTS_DIR = REPO_ROOT / "bench" / "results"
DOMAIN_DEV = REPO_ROOT / "tests" / "fixtures" / "entities"
GOV_DEV = REPO_ROOT / "corpus" / "labels" / "ner-domain-dev.jsonl"
DOMAIN_TEST = REPO_ROOT / "corpus" / "labels" / "ner-domain.jsonl"
SPEED_DOCUMENTS = 300


def news_sets(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, list[dict[str, Any]]]:
    """The dev and test splits of the NER corpora in the evaluation format."""
    vocab = spacy.blank("sv").vocab
    parts = split_sentences(read_corpora(data_dir))
    return {
        f"news-{name}": [evaluation_record(to_doc(vocab, s), s.id) for s in parts[name]]
        for name in ("dev", "test")
    }


def domain_dev(directory: Path = DOMAIN_DEV) -> list[dict[str, Any]]:
    """The entity fixtures (documents plus their labelled mentions) as evaluation records."""
    spans: dict[str, list[list[Any]]] = defaultdict(list)
    for mention in read_jsonl(directory / "mentions.jsonl"):
        spans[mention["document"]].append([mention["start"], mention["end"], mention["label"]])
    return [
        {"id": doc["id"], "text": doc["text"], "entities": sorted(spans[doc["id"]])}
        for doc in read_jsonl(directory / "documents.jsonl")
    ]


def pipelines(model: Path) -> dict[str, spacy.Language]:
    """The model alone, with the gazetteer ruler, and with ruler and edge rules."""
    return {
        "model only": load_ner(model, rules=False),
        "+ gazetteer ruler": add_rules(load_ner(model, rules=False), model, edges=False),
        "+ edge rules (shipped)": load_ner(model),
    }


def speed(nlp: spacy.Language, texts: list[str], passes: int = 3) -> float:
    """Median words per second of ``nlp.pipe`` over ``texts`` in this process."""
    words = sum(len(text.split()) for text in texts)
    rates = []
    for _ in range(passes):
        started = time.perf_counter()
        for _doc in nlp.pipe(texts, batch_size=64):
            pass
        rates.append(words / (time.perf_counter() - started))
    return statistics.median(rates)


def press_texts(limit: int = SPEED_DOCUMENTS, press_dir: Path = DEFAULT_PRESS_DIR) -> list[str]:
    files = sorted(Path(press_dir).rglob("*.md"))[:limit]
    return [file.read_text(encoding="utf-8") for file in files]


def markdown(report: dict[str, Any]) -> str:
    sets = list(report["sets"])
    lines = [
        "| pipeline | " + " | ".join(f"{name} F1 (ORG)" for name in sets) + " | words/s |",
        "| --- | " + " | ".join("---:" for _ in sets) + " | ---: |",
    ]
    for name, row in report["pipelines"].items():
        cells = [
            f"{row[s]['overall']['f1']:.3f} ({row[s]['labels']['ORG']['f1']:.3f})" for s in sets
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['words_per_second']:,.0f} |")
    sizes = ", ".join(
        f"{name} {size['documents']} texts / {size['entities']} entities"
        for name, size in report["sets"].items()
    )
    lines += ["", f"Sets: {sizes}. Speed: {report['speed_documents']} press releases, one process."]
    return "\n".join(lines)


def run(model: Path = DEFAULT_NER_MODEL, output_dir: Path = RESULTS_DIR) -> dict[str, Any]:
    sets: dict[str, list[dict[str, Any]]] = {}
    if DEFAULT_DATA_DIR.is_dir():
        sets.update(news_sets())
    sets["domain-dev"] = domain_dev()
    if DEFAULT_PRESS_DIR.is_dir():
        sets["gov-dev"] = list(with_texts(read_jsonl(GOV_DEV)))
    if (DEFAULT_PRESS_DIR.parent.parent / "seeds").is_dir():
        sets["domain-test"] = list(with_texts(read_jsonl(DOMAIN_TEST)))
    texts = press_texts()
    report: dict[str, Any] = {
        "model": str(model),
        "sets": {
            name: {
                "documents": len(records),
                "entities": sum(
                    1 for r in records for *_, label in r["entities"] if label in SCORED_LABELS
                ),
            }
            for name, records in sets.items()
        },
        "speed_documents": len(texts),
        "pipelines": {},
    }
    for name, nlp in pipelines(model).items():
        row: dict[str, Any] = {s: evaluate(nlp, records) for s, records in sets.items()}
        for scores in row.values():
            scores.pop("seconds"), scores.pop("words_per_second")  # speed is measured below
        row["words_per_second"] = round(speed(nlp, texts)) if texts else None
        report["pipelines"][name] = row
    table = markdown(report)
    write_results(output_dir, "ner", report, table)
    print(table)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_NER_MODEL)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    run(args.model, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
