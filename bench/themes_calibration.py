"""Should the theme classifier keep a quarter of its documents for calibration? Judged without
the test split.

The shipped recipe (``pipeline train-themes``) fits the classifiers on three quarters of the
training documents and keeps the last quarter, the validation split, for the Platt sigmoids and
the thresholds. The alternative fits on all of them and takes the sigmoids and thresholds from
out-of-fold scores of a 5-fold cross-validation inside them. The two are compared by an outer
5-fold cross-validation over the training documents, repeated with other fold seeds: each
recipe is built on four folds and predicts the fifth. Reported: macro-F1 at the recipe's own
thresholds and macro-AP, over all held-out documents and over the real ones (press and sample,
the kind the test split holds), and per fold the difference between the recipes.

The test split is left out entirely. Run with ``python -m bench --only themes-calibration``
(about six minutes); results go to ``bench/results/themes-calibration.md`` and ``.json``. Needs
the press corpus.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from bench import write_results
from pipeline.config import REPO_ROOT
from pipeline.nlp import themes as T
from pipeline.nlp.scoring import precision_recall_f1

RESULTS_DIR = REPO_ROOT / "bench" / "results"
FOLDS = 5
SEEDS = (1, 2)
COLUMNS = (("all", "macro_f1"), ("real", "macro_f1"), ("all", "macro_ap"), ("real", "macro_ap"))
"""The table's columns: documents (all or real) and metric."""
RECIPES = {
    "validation quarter (shipped)": "quarter",
    "all documents, out-of-fold calibration": "out_of_fold",
}


def platt_scale(decisions: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``a`` and ``b`` of P = 1 / (1 + exp(a*d + b)) by maximum likelihood with Platt's
    smoothed targets, the same fit ``CalibratedClassifierCV(method="sigmoid")`` makes; it is
    written out because the scores to fit come from other models than the one calibrated."""
    positives = float(y.sum())
    negatives = float(len(y) - positives)
    target = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * decisions + ab[1]
        slope = expit(z) - (1 - target)  # derivative of log(1 + e^z) - (1 - t) z
        value = float(np.sum(np.logaddexp(0.0, z) - (1 - target) * z))
        return value, np.array([np.sum(slope * decisions), np.sum(slope)])

    start = np.array([0.0, math.log((negatives + 1) / (positives + 1))])
    fitted = minimize(loss, start, jac=True, method="L-BFGS-B")
    return float(fitted.x[0]), float(fitted.x[1])


def quarter_recipe(
    documents: Sequence[T.LabelledDocument],
    held_texts: Sequence[str],
    themes: Sequence[T.Theme],
    config: T.TrainingConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """The shipped recipe on ``documents``: probabilities and thresholds for the held-out texts."""
    slugs = [t.slug for t in themes]
    validation = T.stratified_draw(
        documents,
        slugs,
        config.validation_fraction,
        config.min_validation_positives,
        config.seed + 1,
    )
    fit_docs = [d for d in documents if d.id not in validation]
    check_docs = [d for d in documents if d.id in validation]
    features, linears = T.fit_plain(
        [T.normalize_text(d.text) for d in fit_docs],
        T.label_matrix([d.themes for d in fit_docs], slugs),
        themes,
        config,
    )
    x_check = T.feature_matrix(
        features, themes, config.keyword_scale, [T.normalize_text(d.text) for d in check_docs]
    )
    y_check = T.label_matrix([d.themes for d in check_docs], slugs)
    x_held = T.feature_matrix(features, themes, config.keyword_scale, held_texts)
    probabilities, thresholds = [], []
    for column, slug in enumerate(slugs):
        calibrated = T.calibrate(linears[slug], x_check, y_check[:, column])
        probabilities.append(calibrated.predict_proba(x_held)[:, 1])
        own = calibrated.predict_proba(x_check)[:, 1]
        thresholds.append(T.best_threshold(y_check[:, column], own))
    return np.column_stack(probabilities), np.array(thresholds)


def out_of_fold_recipe(
    documents: Sequence[T.LabelledDocument],
    held_texts: Sequence[str],
    themes: Sequence[T.Theme],
    config: T.TrainingConfig,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit on all ``documents``; sigmoids and thresholds from inner out-of-fold scores."""
    slugs = [t.slug for t in themes]
    texts = [T.normalize_text(d.text) for d in documents]
    y = T.label_matrix([d.themes for d in documents], slugs)
    inner = T.cross_validation_folds(documents, FOLDS, seed + 100)
    decisions = T.out_of_fold_decisions(texts, y, inner, themes, config)
    features, linears = T.fit_plain(texts, y, themes, config)
    x_held = T.feature_matrix(features, themes, config.keyword_scale, held_texts)
    probabilities, thresholds = [], []
    for column, slug in enumerate(slugs):
        a, b = platt_scale(decisions[:, column], y[:, column])
        probabilities.append(expit(-(a * linears[slug].decision_function(x_held) + b)))
        own = expit(-(a * decisions[:, column] + b))
        thresholds.append(T.best_threshold(y[:, column], own))
    return np.column_stack(probabilities), np.array(thresholds)


def scores(y: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray) -> dict[str, Any]:
    """Macro-F1 at the thresholds and macro-AP over the themes with a positive."""
    present = [c for c in range(y.shape[1]) if y[:, c].sum() > 0]
    f1 = _theme_f1(y, probabilities >= thresholds[None, :])
    slugs = [str(c) for c in range(y.shape[1])]
    return {
        "macro_f1": float(np.mean([f1[c] for c in present])),
        "macro_ap": T.macro_average_precision(y, probabilities, slugs)["macro_ap"],
    }


def run() -> dict[str, Any]:
    config = T.TrainingConfig()
    themes = T.load_themes()
    slugs = [t.slug for t in themes]
    labelled = T.load_labelled(slugs)
    splits = T.assign_splits(labelled, slugs, config)
    documents = [d for d in labelled if splits[d.id] != "test"]
    texts = [T.normalize_text(d.text) for d in documents]
    y = T.label_matrix([d.themes for d in documents], slugs)
    real = np.array([d.source in T.TEST_SOURCES for d in documents])
    folds: list[dict[str, Any]] = []
    pooled = {recipe: {} for recipe in RECIPES}
    for seed in SEEDS:
        outer = T.cross_validation_folds(documents, FOLDS, seed)
        predictions = {recipe: np.zeros(y.shape, dtype=bool) for recipe in RECIPES}
        for fold in range(FOLDS):
            held = np.flatnonzero(outer == fold)
            train = [documents[i] for i in np.flatnonzero(outer != fold)]
            held_texts = [texts[i] for i in held]
            row: dict[str, Any] = {"seed": seed, "fold": fold}
            for recipe, kind in RECIPES.items():
                if kind == "quarter":
                    made = quarter_recipe(train, held_texts, themes, config)
                else:
                    made = out_of_fold_recipe(train, held_texts, themes, config, seed)
                probabilities, thresholds = made
                predictions[recipe][held] = probabilities >= thresholds[None, :]
                on_real = real[held]
                row[recipe] = {
                    "all": scores(y[held], probabilities, thresholds),
                    "real": scores(y[held][on_real], probabilities[on_real], thresholds),
                }
            folds.append(row)
            print(
                f"seed {seed} fold {fold}: "
                + "; ".join(f"{r} F1 {row[r]['all']['macro_f1']:.3f}" for r in RECIPES),
                flush=True,
            )
        for recipe in RECIPES:
            f1 = _theme_f1(y[real], predictions[recipe][real])
            pooled[recipe][seed] = dict(zip(slugs, f1, strict=True))
    return {
        "documents": len(documents),
        "real_documents": int(real.sum()),
        "folds": FOLDS,
        "seeds": list(SEEDS),
        "per_fold": folds,
        "per_theme_f1_real": {
            recipe: {
                slug: round(float(np.mean([pooled[recipe][s][slug] for s in SEEDS])), 3)
                for slug in slugs
            }
            for recipe in RECIPES
        },
    }


def _theme_f1(y: np.ndarray, predicted: np.ndarray) -> list[float]:
    """F1 of each theme (column) of a documents x themes prediction."""
    return [
        precision_recall_f1(
            int((predicted[:, c] & (y[:, c] == 1)).sum()),
            int(predicted[:, c].sum()),
            int(y[:, c].sum()),
        )["f1"]
        for c in range(y.shape[1])
    ]


def markdown(results: dict[str, Any]) -> str:
    recipes = list(RECIPES)
    shipped, other = recipes
    folds = results["per_fold"]
    lines = [
        f"Outer {results['folds']}-fold cross-validation over {results['documents']} training "
        f"documents ({results['real_documents']} real), fold seeds {results['seeds']}: "
        f"{len(folds)} held-out folds; the test split is not used.",
        "",
        "| recipe | macro-F1 | macro-F1, real | macro-AP | macro-AP, real |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for recipe in recipes:
        cells = []
        for group, metric in COLUMNS:
            values = [row[recipe][group][metric] for row in folds]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}")
        lines.append(f"| {recipe} | " + " | ".join(cells) + " |")
    differences = []
    for group, metric in COLUMNS:
        gaps = [row[other][group][metric] - row[shipped][group][metric] for row in folds]
        wins = sum(gap > 0 for gap in gaps)
        differences.append(f"{np.mean(gaps):+.3f} ({wins} of {len(gaps)} folds better)")
    lines.append("| difference per fold | " + " | ".join(differences) + " |")
    lines += [
        "",
        "Mean ± standard deviation over the held-out folds. Per-theme F1 on the real documents "
        "(each seed's held-out folds pooled, mean over seeds):",
        "",
        "| theme | " + " | ".join(recipes) + " |",
        "| --- | " + " | ".join("---:" for _ in recipes) + " |",
    ]
    per_theme = results["per_theme_f1_real"]
    for slug in per_theme[shipped]:
        lines.append(
            f"| {slug} | " + " | ".join(f"{per_theme[r][slug]:.2f}" for r in recipes) + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if not T.DEFAULT_PRESS_DIR.is_dir():
        print(f"skipped: the press corpus is not at {T.DEFAULT_PRESS_DIR}")
        return 0
    results = run()
    table = markdown(results)
    print(table)
    write_results(args.output_dir, "themes-calibration", results, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
