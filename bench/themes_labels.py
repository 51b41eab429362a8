"""Do more hand labels help the theme classifier? Answered without touching the test split.

A label file that is not (yet) part of training, ``corpus/labels/press-extra.jsonl`` by default,
is judged by 5-fold cross-validation over the shipped model's training documents: each fold's
classifier (the shipped features and logistic regressions, uncalibrated) is trained on the
other four folds, once as shipped and once with every document of the extra file added, and
the held-out fold is scored by average precision per theme. The extra documents are never
scored, so both variants are measured on exactly the same documents; the test split is left
out entirely. Macro-AP is reported over all those documents and over the real ones (press and
sample, the kind the test split holds).

Because the shipped model never saw the extra file, it is also scored on it, as a second
held-out set (themes without a positive in the file are not averaged).

Run with ``python -m bench --only themes-labels`` (``--extra FILE`` for another file); results
go to ``bench/results/themes-labels.md`` and ``.json``. Needs the press corpus.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench import write_results
from pipeline.config import REPO_ROOT
from pipeline.nlp import themes as T

RESULTS_DIR = REPO_ROOT / "bench" / "results"
DEFAULT_EXTRA = T.DEFAULT_LABELS / "press-extra.jsonl"
FOLDS = 5
SEED = 1


def run(extra_file: Path) -> dict[str, object]:
    config = T.TrainingConfig()
    themes = T.load_themes()
    slugs = [t.slug for t in themes]
    # the shipped label files plus the extra one; a document labelled in both is an error
    extra_file_entry = T.LabelFile(str(extra_file), "extra", "press")
    everything = T.load_labelled(slugs, label_files=(*T.LABEL_FILES, extra_file_entry))
    labelled = [d for d in everything if d.source != "extra"]
    extra = [d for d in everything if d.source == "extra"]
    splits = T.assign_splits(labelled, slugs, config)
    documents = [d for d in labelled if splits[d.id] != "test"]
    texts = [T.normalize_text(d.text) for d in documents]
    y = T.label_matrix([d.themes for d in documents], slugs)
    folds = T.cross_validation_folds(documents, FOLDS, SEED)
    real = np.array([d.source in T.TEST_SOURCES for d in documents])
    results: dict[str, object] = {
        "extra_file": str(extra_file.relative_to(REPO_ROOT)),
        "documents": len(documents),
        "real_documents": int(real.sum()),
        "extra_documents": len(extra),
        "folds": FOLDS,
        "variants": {},
    }
    shipped = T.ThemeModel.load()
    results["shipped_model_on_extra"] = T.evaluate_themes(
        shipped, [{"id": d.id, "text": d.text, "themes": list(d.themes)} for d in extra]
    )
    added = (
        [T.normalize_text(d.text) for d in extra],
        T.label_matrix([d.themes for d in extra], slugs),
    )
    for name, with_extra in (("as shipped", None), ("with the extra labels", added)):
        scores = T.out_of_fold_decisions(texts, y, folds, themes, config, added=with_extra)
        every = T.macro_average_precision(y, scores, slugs)
        reals = T.macro_average_precision(y[real], scores[real], slugs)
        results["variants"][name] = {  # type: ignore[index]
            "macro_ap": every["macro_ap"],
            "macro_ap_real": reals["macro_ap"],
            "ap_real": {slug: round(value, 3) for slug, value in reals["per_theme"].items()},
        }
    return results


def markdown(results: dict[str, object]) -> str:
    variants: dict[str, dict] = results["variants"]  # type: ignore[assignment]
    slugs = list(next(iter(variants.values()))["ap_real"])
    lines = [
        f"{results['folds']}-fold cross-validation over {results['documents']} training "
        f"documents ({results['real_documents']} real); {results['extra_documents']} documents "
        f"of `{results['extra_file']}` added to every training fold, never scored.",
        "",
        "| training | macro-AP | macro-AP, real documents | " + " | ".join(slugs) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in slugs) + " |",
    ]
    for name, row in variants.items():
        cells = " | ".join(f"{row['ap_real'][s]:.2f}" for s in slugs)
        lines.append(f"| {name} | {row['macro_ap']:.3f} | {row['macro_ap_real']:.3f} | {cells} |")
    lines += ["", "Per-theme columns: average precision on the real documents."]
    scores: dict = results["shipped_model_on_extra"]  # type: ignore[assignment]
    measured = [s for s in slugs if scores["per_theme"][s]["support"]]
    lines += [
        "",
        f"The shipped model on the {scores['documents']} extra documents (never used to train "
        f"or tune it): macro-F1 over the {len(measured)} themes with positives "
        f"{scores['macro_f1']:.3f}, micro-F1 {scores['micro']['f1']:.3f}.",
        "",
        "| theme | positives | precision | recall | F1 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for slug in measured:
        row = scores["per_theme"][slug]
        lines.append(
            f"| {slug} | {row['support']} | {row['precision']:.2f} | {row['recall']:.2f} "
            f"| {row['f1']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", type=Path, default=DEFAULT_EXTRA, help="label file to judge")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if not T.DEFAULT_PRESS_DIR.is_dir():
        print(f"skipped: the press corpus is not at {T.DEFAULT_PRESS_DIR}")
        return 0
    results = run(args.extra.resolve())
    table = markdown(results)
    print(table)
    write_results(args.output_dir, "themes-labels", results, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
