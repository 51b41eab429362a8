"""Entity benchmark: grouping of mentions into entities, and geocoding, on the hand-made set.

The set (``tests/fixtures/entities/``) has documents from the bundled sample sites and documents
written for it, with every mention's expected entity and, for places, where it is. The mentions
are linked document by document into a fresh database, exactly as a batch stores them, and
scored:

* **pairwise precision and recall** of the grouping: every pair of mentions is one decision,
  "same entity" or not, compared with the hand labels;
* **geocoding accuracy**: a place mention is right when its entity lies within the tolerance the
  set gives (3 km for a district, 5 km for a town), or has no coordinates when the set says it
  should have none (an ambiguous or foreign name). "wrong" counts coordinates that are off or
  should not be there at all.

The fuzzy-matching threshold is swept to show what it trades: typos merged against different
names with one letter apart (Lindqvist and Lindkvist are two people in the set).

With the NER model in ``models/ner`` the set is also run end to end: the model's spans are
linked instead of the hand-labelled ones, and the gold mentions the model found with exact
boundaries are scored the same way.

Run with ``make bench`` or ``python -m bench.entities``; results go to
``bench/results/entities.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pipeline.config import REPO_ROOT
from pipeline.nlp.entities import GoldMention, evaluate_linking, read_gold
from pipeline.nlp.linking import FUZZY_THRESHOLD, Linker
from pipeline.nlp.ner import DEFAULT_NER_MODEL, NerModelMissingError, annotate, load_ner

GOLD = REPO_ROOT / "tests" / "fixtures" / "entities"
RESULTS = REPO_ROOT / "bench" / "results" / "entities.json"
SWEEP = (75.0, 80.0, 85.0, 88.0, 90.0, 92.0, 95.0, 100.1)


def with_ner(
    documents: list[dict[str, str]], gold: list[GoldMention], linker: Linker, model: Path
) -> dict[str, object]:
    """The set linked from the NER model's own spans; skipped when there is no model."""
    try:
        nlp = load_ner(model)
    except NerModelMissingError as exc:
        return {"skipped": str(exc)}
    found = annotate(nlp, [document["text"] for document in documents])
    spans = {document["id"]: ents for document, ents in zip(documents, found, strict=True)}
    result = evaluate_linking(documents, gold, linker=linker, spans=spans)
    return {
        "model": str(model),
        "gold_mentions_found": result["scored_mentions"],
        "gold_mentions": result["mentions"],
        "pairwise": result["pairwise"],
        "geocoding": {k: v for k, v in result["geocoding"].items() if k != "mistakes"},
    }


def run(
    gold_dir: Path = GOLD, results: Path = RESULTS, ner_model: Path = DEFAULT_NER_MODEL
) -> dict[str, object]:
    """Score the default threshold, sweep the others, print a table and write the JSON."""
    documents, gold = read_gold(gold_dir)
    started = time.perf_counter()
    linker = Linker()
    setup = time.perf_counter() - started
    sweep = {
        threshold: evaluate_linking(documents, gold, linker=linker, fuzzy_threshold=threshold)
        for threshold in sorted({*SWEEP, FUZZY_THRESHOLD})
    }
    chosen = sweep[FUZZY_THRESHOLD]
    report = {
        "set": {
            "documents": chosen["documents"],
            "mentions": chosen["mentions"],
            "entities": chosen["gold_entities"],
            "place_mentions": chosen["geocoding"]["mentions"],
        },
        "fuzzy_threshold": FUZZY_THRESHOLD,
        "pairwise": chosen["pairwise"],
        "by_label": chosen["by_label"],
        "geocoding": chosen["geocoding"],
        "errors": chosen["errors"],
        "sweep": {
            str(threshold): {"pairwise": r["pairwise"], "geocoding_wrong": r["geocoding"]["wrong"]}
            for threshold, r in sweep.items()
        },
        "with_ner": with_ner(documents, gold, linker, ner_model),
        "linker_setup_seconds": round(setup, 2),
        "mentions_per_second": chosen["mentions_per_second"],
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print_report(report)
    return report


def print_report(report: dict) -> None:
    pair, geo = report["pairwise"], report["geocoding"]
    size = report["set"]
    print(
        f"Entity set: {size['documents']} documents, {size['mentions']} mentions, "
        f"{size['entities']} entities, {size['place_mentions']} place mentions"
    )
    print(f"Grouping (pairwise, threshold {report['fuzzy_threshold']:g}): {_prf(pair)}")
    for label, scores in report["by_label"].items():
        print(f"  {label}: {_prf(scores)}")
    print(
        f"Geocoding: {geo['correct']}/{geo['mentions']} correct ({geo['accuracy']:.1%}), "
        f"{geo['wrong']} wrong, {geo['unplaced']} without coordinates that should have them"
    )
    print("Fuzzy threshold sweep (pairwise F1):")
    for threshold, row in report["sweep"].items():
        print(f"  {float(threshold):6.1f}  {_prf(row['pairwise'])}")
    for kind, errors in report["errors"].items():
        for error in errors:
            print(f"  {kind}: {json.dumps(error, ensure_ascii=False)}")
    ner = report["with_ner"]
    if "skipped" in ner:
        print(f"End to end with the NER model: skipped ({ner['skipped']})")
    else:
        print(
            f"End to end with the NER model: {ner['gold_mentions_found']}/{ner['gold_mentions']}"
            f" gold mentions found with exact boundaries; on those {_prf(ner['pairwise'])},"
            f" geocoding {ner['geocoding']['accuracy']:.1%} ({ner['geocoding']['wrong']} wrong)"
        )
    print(f"Linking speed: {report['mentions_per_second']} mentions/s")


def _prf(scores: dict) -> str:
    return f"P {scores['precision']:.3f}  R {scores['recall']:.3f}  F1 {scores['f1']:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=GOLD, help="Directory of the mention set.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where to write the JSON.")
    parser.add_argument(
        "--ner-model", type=Path, default=DEFAULT_NER_MODEL, help="NER model for the end-to-end run"
    )
    args = parser.parse_args(argv)
    run(args.gold, args.results, args.ner_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
