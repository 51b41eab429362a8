"""Theme classification: which of the sector's themes a document is substantially about.

Four layers, each usable on its own:

* the taxonomy in ``corpus/themes.yaml`` (slug, label, definition, Swedish keyword stems),
  read and validated by :mod:`pipeline.nlp.taxonomy`;
* keyword rules (:func:`weak_labels`, :class:`KeywordThemeModel`): a theme fires when its
  keywords recur in a document, not on a single passing mention. They are the baseline every
  trained model is compared with, and a source of weak labels;
* the hand-labelled documents in ``corpus/labels/`` (:func:`load_labelled`) and their fixed
  split into train, validation and test (:func:`assign_splits`). Only real documents (the
  government press corpus and the bundled sample sites) go into the test split: the written
  documents were composed to carry their labels, so scoring on them would flatter the model;
* a scikit-learn model (:func:`train_themes`, :class:`ThemeModel`): TF-IDF word and character
  n-grams plus the keyword counts of every theme, one class-weighted logistic regression per
  theme fitted on the training split, Platt-calibrated and thresholded on the validation split,
  and scored once on the test split next to the keyword baseline.

The model sees a document's body without its title, because that is the text the pipeline
stores and annotates (``documents.text``).

Models are saved with ``skops`` and loaded against an explicit list of trusted types: loading a
pickle runs arbitrary code, and a model directory is a file someone may hand us.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import time
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sparse
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import KFold
from sklearn.pipeline import FeatureUnion

from pipeline.config import REPO_ROOT
from pipeline.nlp.scoring import precision_recall_f1
from pipeline.nlp.taxonomy import DEFAULT_THEMES, Theme, ThemesError, compile_keywords, load_themes
from pipeline.nlp.versions import DEFAULT_THEME_MODEL, METADATA_FILE

DEFAULT_PRESS_DIR = REPO_ROOT.parent / "shared" / "data" / "press"
DEFAULT_LABELS = REPO_ROOT / "corpus" / "labels"

MODEL_FILE = "themes.skops"
THRESHOLDS_FILE = "thresholds.json"
METRICS_FILE = "metrics.json"

# Every type the saved model may contain. skops refuses anything else, so a tampered or
# foreign file fails to load instead of instantiating arbitrary classes.
TRUSTED_TYPES = [
    "builtins.dict",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "numpy.dtype",
    "numpy.float32",
    "numpy.float64",
    "numpy.int32",
    "numpy.ndarray",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.model_selection._split.KFold",
    "sklearn.pipeline.FeatureUnion",
]

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


class ThemeModelMissingError(FileNotFoundError):
    """No trained theme model where one was expected."""


# --- text -------------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Canonical form for both keyword rules and the model.

    Government pages hyphenate long compounds with soft hyphens ("brotts\\u00adlighet") and
    non-breaking spaces; left in, they split words for the tokenizer and the keyword regexes.
    """
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return " ".join(text.split())


def markdown_body(markdown: str) -> str:
    """The body of a Markdown document (``# Title``, then the text) as plain text.

    The title line is left out because the pipeline stores a page's title apart from the text
    it annotates, and the model must see what it will see there. Heading marks and link
    targets go too (link targets are URL paths, not prose).
    """
    lines = markdown.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    text = "\n".join(line.lstrip("#").strip() for line in lines).strip()
    return _MARKDOWN_LINK.sub(r"\1", text)


# --- keyword rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeywordRule:
    """When a theme's keywords count as a topic rather than a passing mention.

    A theme fires when it has at least ``min_hits`` keyword matches and at least
    ``per_1000_words`` matches per thousand words, so that a long budget text that names
    "trygghet" three times in passing is not a safety document.
    """

    min_hits: int = 3
    per_1000_words: float = 2.0

    def required(self, n_words: int) -> float:
        """Matches a document of ``n_words`` needs before the theme fires."""
        return max(float(self.min_hits), self.per_1000_words * n_words / 1000.0)


def keyword_scores(text: str, themes: Sequence[Theme], rule: KeywordRule) -> dict[str, float]:
    """Per-theme score in [0, 1) that crosses 0.5 exactly where the keyword rule fires.

    ``hits / required`` is squashed with r / (1 + r), so the score keeps growing with
    evidence but stays in [0, 1) like the model's calibrated scores.
    """
    text = normalize_text(text)
    required = rule.required(len(text.split()))
    scores = {}
    for theme in themes:
        ratio = theme.count(text) / required
        scores[theme.slug] = ratio / (1.0 + ratio)
    return scores


def weak_labels(
    texts: Iterable[str], themes: Sequence[Theme], rule: KeywordRule | None = None
) -> list[set[str]]:
    """Themes whose keywords recur in each text (see :class:`KeywordRule`)."""
    rule = rule or KeywordRule()
    return [
        {slug for slug, score in keyword_scores(text, themes, rule).items() if score >= 0.5}
        for text in texts
    ]


class ThemePredictor(Protocol):
    """What :func:`evaluate_themes` needs: the slugs and a thresholded prediction."""

    @property
    def slugs(self) -> list[str]: ...

    def predict(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]: ...


class KeywordThemeModel:
    """The keyword baseline behind the same interface as :class:`ThemeModel`."""

    def __init__(self, themes: Sequence[Theme], rule: KeywordRule | None = None) -> None:
        self.themes = list(themes)
        self.rule = rule or KeywordRule()

    @property
    def slugs(self) -> list[str]:
        """Theme slugs in taxonomy order."""
        return [theme.slug for theme in self.themes]

    def scores(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Keyword score of every theme for every text."""
        return [keyword_scores(text, self.themes, self.rule) for text in texts]

    def predict(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Themes whose keyword rule fires, highest score first."""
        return [_above(scores, dict.fromkeys(scores, 0.5)) for scores in self.scores(texts)]

    def explain(self, text: str, slug: str, k: int = 8) -> list[str]:
        """The keyword matches for ``slug``, most frequent first."""
        theme = _theme_by_slug(self.themes, slug)
        return [word for word, _ in Counter(theme.matches(normalize_text(text))).most_common(k)]


def _above(scores: dict[str, float], thresholds: dict[str, float]) -> list[tuple[str, float]]:
    """Themes at or above their threshold, sorted by score (ties by slug, for stable output)."""
    chosen = [(slug, score) for slug, score in scores.items() if score >= thresholds[slug]]
    return sorted(chosen, key=lambda item: (-item[1], item[0]))


def _theme_by_slug(themes: Sequence[Theme], slug: str) -> Theme:
    for theme in themes:
        if theme.slug == slug:
            return theme
    raise KeyError(f"unknown theme {slug!r}; known: {', '.join(t.slug for t in themes)}")


# --- hand-labelled documents ------------------------------------------------------------------


@dataclass(frozen=True)
class LabelFile:
    """One label file in ``corpus/labels``: where its paths point and how the text is read.

    ``base`` is "press" (the press data directory, Markdown), "repo" (the repository, HTML
    pages of the sample sites, read with the project's extractor) or "labels" (the labels
    directory, Markdown).
    """

    name: str
    source: str
    base: str


LABEL_FILES = (
    LabelFile("press-heldout.jsonl", "press", "press"),
    LabelFile("press.jsonl", "press", "press"),
    LabelFile("sample.jsonl", "sample", "repo"),
    LabelFile("written.jsonl", "written", "labels"),
)
TEST_SOURCES = frozenset({"press", "sample"})
"""Sources whose documents may be test documents (see the module docstring)."""


@dataclass(frozen=True)
class LabelledDocument:
    """A document's body text with its hand labels; ``id`` is its path in the label file."""

    id: str
    source: str
    text: str
    themes: tuple[str, ...]


def read_labels(path: Path) -> list[dict[str, Any]]:
    """Label lines ``{"path", "themes"}`` (other keys, such as a document kind, are kept)."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("path"), str) or not isinstance(row.get("themes"), list):
            raise ValueError(f"{path}:{number}: expected {{'path': str, 'themes': [slugs]}}")
        rows.append(row)
    return rows


def load_labelled(
    slugs: Sequence[str],
    *,
    label_files: Sequence[LabelFile] = LABEL_FILES,
    labels_dir: Path = DEFAULT_LABELS,
    press_dir: Path = DEFAULT_PRESS_DIR,
    repo_root: Path = REPO_ROOT,
) -> list[LabelledDocument]:
    """Every hand-labelled document of the label files that exist, with its text.

    A label file that is absent is skipped (a checkout may not have the written documents); a
    label outside the taxonomy, a path labelled twice or a missing document is an error, since
    any of them would silently change what the model learns or is scored on. ``label_files``
    may add files outside the shipped training set (a file name may be an absolute path).
    """
    bases = {"press": Path(press_dir), "repo": Path(repo_root), "labels": Path(labels_dir)}
    documents: list[LabelledDocument] = []
    seen: set[str] = set()
    for label_file in label_files:
        path = Path(labels_dir) / label_file.name
        if not path.is_file():
            continue
        for row in read_labels(path):
            unknown = set(row["themes"]) - set(slugs)
            if unknown:
                raise ValueError(f"{path}: {row['path']}: unknown themes {sorted(unknown)}")
            if row["path"] in seen:
                raise ValueError(f"{path}: {row['path']} is labelled twice")
            seen.add(row["path"])
            file = bases[label_file.base] / row["path"]
            if not file.is_file():
                raise FileNotFoundError(f"{path}: labelled document {file} not found")
            documents.append(
                LabelledDocument(
                    id=row["path"],
                    source=label_file.source,
                    text=_document_text(file),
                    themes=tuple(sorted(row["themes"])),
                )
            )
    return documents


def _document_text(file: Path) -> str:
    """Body text of a Markdown document, or of an HTML page as the pipeline extracts it."""
    if file.suffix == ".md":
        return markdown_body(file.read_text(encoding="utf-8"))
    from pipeline.extract import extract  # lxml and trafilatura load only when needed

    return extract(file.read_text(encoding="utf-8")).text


# --- the split --------------------------------------------------------------------------------


def assign_splits(
    documents: Sequence[LabelledDocument], slugs: Sequence[str], config: TrainingConfig
) -> dict[str, str]:
    """Each document's split: "train", "validation" or "test"; the same input gives the same split.

    The test split is drawn from the real documents only (:data:`TEST_SOURCES`), the validation
    split from what is left, written documents included; the rest is training data. Both draws
    are stratified per theme (:func:`stratified_draw`), so that rare themes are measurable.
    """
    real = [document for document in documents if document.source in TEST_SOURCES]
    test = stratified_draw(
        real, slugs, config.test_fraction, config.min_test_positives, config.seed
    )
    rest = [document for document in documents if document.id not in test]
    validation = stratified_draw(
        rest, slugs, config.validation_fraction, config.min_validation_positives, config.seed + 1
    )
    return {
        document.id: "test"
        if document.id in test
        else "validation"
        if document.id in validation
        else "train"
        for document in documents
    }


def cross_validation_folds(
    documents: Sequence[LabelledDocument], folds: int, seed: int
) -> np.ndarray:
    """The fold of each document, with every theme's positives spread evenly over the folds.

    Documents are placed one by one in a seeded order, those of the rarest themes first, each
    in the fold that holds the fewest positives of its themes (rarest theme first, then the
    next), and among equals the smallest fold. Every fold's training part can so learn every
    theme, and every fold's held-out part tests it.
    """
    totals = Counter(slug for document in documents for slug in document.themes)
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    order.sort(key=lambda i: min((totals[s] for s in documents[i].themes), default=math.inf))
    held: list[Counter[str]] = [Counter() for _ in range(folds)]
    sizes = [0] * folds
    assigned = np.zeros(len(documents), dtype=int)
    for index in order:
        themes = sorted(documents[index].themes, key=lambda s: (totals[s], s))
        fold = min(range(folds), key=lambda f: ([held[f][s] for s in themes], sizes[f], f))
        held[fold].update(themes)
        sizes[fold] += 1
        assigned[index] = fold
    return assigned


def stratified_draw(
    documents: Sequence[LabelledDocument],
    slugs: Sequence[str],
    fraction: float,
    min_positives: int,
    seed: int,
) -> set[str]:
    """Ids drawn so that each theme has ``fraction`` of its positives (at least ``min_positives``).

    Themes are served rarest first from one seeded order of the documents, the usual greedy form
    of iterative stratification: a document drawn for a rare theme also counts for the common
    themes it carries. Every theme keeps at least two positives outside the draw, so that the
    splits after it can still learn it. Documents without a theme are drawn in proportion.
    """
    order = sorted(documents, key=lambda document: document.id)
    random.Random(seed).shuffle(order)
    totals = Counter(slug for document in documents for slug in document.themes)
    drawn: set[str] = set()
    counts: Counter[str] = Counter()
    for slug in sorted(slugs, key=lambda s: (totals[s], s)):
        target = min(max(min_positives, round(fraction * totals[slug])), totals[slug] - 2)
        for document in order:
            if counts[slug] >= target:
                break
            if slug in document.themes and document.id not in drawn:
                drawn.add(document.id)
                counts.update(document.themes)
    empty = [document for document in order if not document.themes]
    drawn.update(document.id for document in empty[: round(fraction * len(empty))])
    return drawn


# --- features and classifiers -----------------------------------------------------------------


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that shapes a trained model; its hash is part of the model version.

    Feature caps keep the saved model small: 11 themes x 90k float64 weights is about 8 MB.
    ``keyword_scale`` weighs the keyword counts against the TF-IDF features (chosen by
    cross-validation on the training and validation documents, like ``C`` and the n-gram
    ranges). ``augmentation_gain`` is how much validation macro-AP weak labels or
    self-training must add before they are used (see :func:`train_themes`).
    """

    word_max_features: int = 30_000
    word_min_df: int = 2
    char_max_features: int = 60_000
    char_min_df: int = 2
    char_ngrams: tuple[int, int] = (3, 5)
    max_df: float = 0.9
    keyword_scale: float = 0.1
    C: float = 4.0
    test_fraction: float = 0.3
    min_test_positives: int = 6
    validation_fraction: float = 0.25
    min_validation_positives: int = 4
    unlabelled_sample: int = 2_000
    augmentation_weight: float = 0.1
    self_training_confidence: float = 0.9
    augmentation_gain: float = 0.01
    seed: int = 20251122
    rule: KeywordRule = field(default_factory=KeywordRule)

    def digest(self, themes: Sequence[Theme], documents: Sequence[LabelledDocument]) -> str:
        """Short hash of config, keyword rules, labelled documents and sklearn version.

        The same code, labels and texts give the same hash, so a retrained model keeps its
        version exactly when nothing that shapes it has changed.
        """
        payload = {
            "config": asdict(self),
            "themes": [[t.slug, list(t.keywords)] for t in themes],
            "documents": [[d.id, d.source, list(d.themes), d.text] for d in documents],
            "sklearn": sklearn.__version__,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:10]


def build_features(config: TrainingConfig) -> FeatureUnion:
    """TF-IDF word 1-2-grams plus char_wb n-grams.

    Character n-grams inside word boundaries catch Swedish compounds and inflections
    ("hemlöshet", "hemlösa", "hemlöshetsstrategi" share "hemlö") that word features miss.
    """
    word = TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=config.word_min_df,
        max_df=config.max_df,
        max_features=config.word_max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    char = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=config.char_ngrams,
        min_df=config.char_min_df,
        max_df=config.max_df,
        max_features=config.char_max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    return FeatureUnion([("word", word), ("char", char)])


def keyword_matrix(
    texts: Sequence[str], themes: Sequence[Theme], scale: float
) -> sparse.csr_matrix:
    """Two columns per theme: log(1 + keyword matches) and log(1 + matches per 1,000 words).

    The keyword lists encode what the definitions say in the sector's own words; as features
    (rather than as a rule) the classifier learns how much each theme's matches are worth,
    including matches of other themes. ``scale`` keeps them comparable to TF-IDF weights.
    """
    rows = []
    for text in texts:
        words = max(len(text.split()), 50)
        counts = [theme.count(text) for theme in themes]
        rows.append(
            [math.log1p(count) for count in counts]
            + [math.log1p(1000.0 * count / words) for count in counts]
        )
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(texts), 2 * len(themes))
    return sparse.csr_matrix(matrix * scale)


def feature_matrix(
    features: FeatureUnion, themes: Sequence[Theme], keyword_scale: float, texts: Sequence[str]
) -> sparse.csr_matrix:
    """The model's input for normalised texts: TF-IDF columns, then the keyword columns."""
    keywords = keyword_matrix(texts, themes, keyword_scale)
    return sparse.hstack([features.transform(texts), keywords]).tocsr()


def keyword_feature_names(themes: Sequence[Theme]) -> list[str]:
    """Names of :func:`keyword_matrix` columns, in its order."""
    return [f"keywords__{t.slug}" for t in themes] + [f"keyword_density__{t.slug}" for t in themes]


def build_classifier(config: TrainingConfig) -> LogisticRegression:
    """Class-weighted logistic regression: rare themes must not be drowned by the negatives."""
    return LogisticRegression(
        C=config.C, class_weight="balanced", solver="liblinear", max_iter=1000, random_state=0
    )


def calibrate(linear: LogisticRegression, x: Any, y: np.ndarray) -> CalibratedClassifierCV:
    """Platt scaling of a fitted classifier on held-out documents (the validation split).

    The classifier is frozen, so the calibration maps its scores to probabilities without
    refitting it; sklearn's sigmoid fit smooths the targets, which keeps a validation set that
    the classifier separates perfectly from producing scores of exactly 0 and 1.
    """
    # A frozen classifier is not refitted per fold, so the folds only route its predictions
    # to one sigmoid fit over all of ``x``; plain KFold avoids stratified folds' complaints
    # about themes with fewer validation positives than folds.
    return CalibratedClassifierCV(
        FrozenEstimator(linear), method="sigmoid", cv=KFold(n_splits=2)
    ).fit(x, y)


def best_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """Threshold with the highest F1 on validation scores; 0.5 when there is no positive.

    Several thresholds often tie (every cut between two well-separated groups scores the
    same); the middle of the tied ones keeps the widest margin on both sides.
    """
    if y.sum() == 0:
        return 0.5
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    predicted = scores[None, :] >= grid[:, None]
    f1 = 2 * (predicted & (y == 1)).sum(axis=1) / (predicted.sum(axis=1) + y.sum())
    tied = grid[f1 >= f1.max() - 1e-9]
    return float(tied[len(tied) // 2])


def label_matrix(labels: Sequence[Iterable[str]], slugs: Sequence[str]) -> np.ndarray:
    """0/1 matrix of documents x themes from each document's theme slugs."""
    sets = [set(themes) for themes in labels]
    return np.array([[slug in themes for slug in slugs] for themes in sets], dtype=np.int8)


def _vocabularies(features: FeatureUnion) -> tuple[FeatureUnion, dict[str, np.ndarray]]:
    """The features without their vocabularies, and each vocabulary as an array of its terms
    in column order.

    skops writes a dict entry by entry, so the 50,000 terms would be 100,000 nodes that take
    seconds to check and rebuild in every process that loads the model; one array of strings
    is a single node.
    """
    bare = copy.deepcopy(features)
    arrays = {}
    for name, vectorizer in bare.transformer_list:
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        arrays[name] = np.array(terms, dtype=str)
        del vectorizer.vocabulary_
    return bare, arrays


def _with_vocabularies(features: FeatureUnion, arrays: dict[str, np.ndarray]) -> FeatureUnion:
    """Undo :func:`_vocabularies` on a loaded model."""
    for name, vectorizer in features.transformer_list:
        vectorizer.vocabulary_ = {term: column for column, term in enumerate(arrays[name].tolist())}
    return features


# --- weak labels and self-training ------------------------------------------------------------


@dataclass(frozen=True)
class Extra:
    """Additional training rows for one theme: feature rows, labels and sample weights."""

    x: Any
    y: np.ndarray
    weight: np.ndarray


def unlabelled_texts(press_dir: Path, exclude: set[str], limit: int, seed: int) -> list[str]:
    """Normalised bodies of a seeded sample of press documents that nobody labelled.

    Very short documents (under 25 words: image captions, calendar stubs) carry no topic and
    are left out. The sample keeps training to minutes on a small machine.
    """
    files = [
        file
        for file in sorted(Path(press_dir).rglob("*.md"))
        if file.relative_to(press_dir).as_posix() not in exclude
    ]
    random.Random(seed).shuffle(files)
    texts = []
    for file in files:
        text = normalize_text(markdown_body(file.read_text(encoding="utf-8")))
        if len(text.split()) >= 25:
            texts.append(text)
        if len(texts) == limit:
            break
    return texts


def weak_extra(
    x_unlabelled: Any,
    texts: Sequence[str],
    themes: Sequence[Theme],
    config: TrainingConfig,
) -> dict[str, Extra]:
    """Keyword-rule labels on unlabelled documents, down-weighted, as extra rows per theme."""
    matrix = label_matrix(weak_labels(texts, themes, config.rule), [t.slug for t in themes])
    weight = np.full(len(texts), config.augmentation_weight)
    return {
        theme.slug: Extra(x_unlabelled, matrix[:, column], weight)
        for column, theme in enumerate(themes)
    }


def self_training_extra(
    x_unlabelled: Any, linears: dict[str, LogisticRegression], config: TrainingConfig
) -> dict[str, Extra]:
    """Confident predictions of the plain model on unlabelled documents, down-weighted.

    A document becomes a positive above ``self_training_confidence`` and a negative below one
    minus it; the uncertain middle is left out.
    """
    extras = {}
    for slug, linear in linears.items():
        probability = linear.predict_proba(x_unlabelled)[:, 1]
        high = probability >= config.self_training_confidence
        keep = np.flatnonzero(high | (probability <= 1 - config.self_training_confidence))
        extras[slug] = Extra(
            x_unlabelled[keep],
            high[keep].astype(np.int8),
            np.full(len(keep), config.augmentation_weight),
        )
    return extras


# --- training ---------------------------------------------------------------------------------


def fit_linears(
    x: Any,
    y: np.ndarray,
    slugs: Sequence[str],
    config: TrainingConfig,
    extras: dict[str, Extra] | None = None,
) -> dict[str, LogisticRegression]:
    """One classifier per theme on the training rows, plus that theme's extra rows if given."""
    linears = {}
    for column, slug in enumerate(slugs):
        if y[:, column].sum() == 0:
            raise ValueError(f"theme '{slug}' has no positive document in the training split")
        rows, labels, weight = x, y[:, column], np.ones(len(y))
        if extras:
            extra = extras[slug]
            rows = sparse.vstack([x, extra.x]).tocsr()
            labels = np.concatenate([labels, extra.y])
            weight = np.concatenate([weight, extra.weight])
        linears[slug] = build_classifier(config).fit(rows, labels, sample_weight=weight)
    return linears


def fit_plain(
    texts: Sequence[str], y: np.ndarray, themes: Sequence[Theme], config: TrainingConfig
) -> tuple[FeatureUnion, dict[str, LogisticRegression]]:
    """Features and one uncalibrated classifier per theme, fitted on normalised ``texts``."""
    features = build_features(config).fit(texts)
    x = feature_matrix(features, themes, config.keyword_scale, texts)
    return features, fit_linears(x, y, [theme.slug for theme in themes], config)


def out_of_fold_decisions(
    texts: Sequence[str],
    y: np.ndarray,
    folds: np.ndarray,
    themes: Sequence[Theme],
    config: TrainingConfig,
    *,
    added: tuple[Sequence[str], np.ndarray] | None = None,
) -> np.ndarray:
    """Every document's decision score per theme, from a model fitted without its fold.

    For judging training choices without the test split (``bench/themes_labels.py``,
    ``bench/themes_calibration.py``). Features are fitted again for each fold, so nothing of
    the held-out documents reaches the vocabulary or the IDF weights. ``added`` (normalised
    texts and their labels) joins every training part without being scored: a way to judge
    extra labelled documents.
    """
    slugs = [theme.slug for theme in themes]
    decisions = np.zeros(y.shape, dtype=float)
    for fold in np.unique(folds):
        held, kept = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)
        train_texts, train_y = [texts[i] for i in kept], y[kept]
        if added is not None:
            train_texts, train_y = [*train_texts, *added[0]], np.vstack([train_y, added[1]])
        features, linears = fit_plain(train_texts, train_y, themes, config)
        x_held = feature_matrix(features, themes, config.keyword_scale, [texts[i] for i in held])
        for column, slug in enumerate(slugs):
            decisions[held, column] = linears[slug].decision_function(x_held)
    return decisions


def macro_average_precision(
    y: np.ndarray, scores: np.ndarray, slugs: Sequence[str]
) -> dict[str, Any]:
    """Average precision per theme and their mean: threshold-free, so variants compare fairly."""
    per_theme = {
        slug: round(float(average_precision_score(y[:, c], scores[:, c])), 4)
        for c, slug in enumerate(slugs)
        if y[:, c].sum() > 0
    }
    return {"macro_ap": round(sum(per_theme.values()) / len(per_theme), 4), "per_theme": per_theme}


def train_themes(
    output: Path,
    *,
    labels_dir: Path = DEFAULT_LABELS,
    press_dir: Path = DEFAULT_PRESS_DIR,
    repo_root: Path = REPO_ROOT,
    themes_path: Path = DEFAULT_THEMES,
    config: TrainingConfig | None = None,
) -> dict[str, Any]:
    """Train on the hand labels, calibrate and threshold on validation, score on test; save.

    Steps, each using only the documents it names:

    1. the labelled documents are split (:func:`assign_splits`);
    2. the vocabulary and one classifier per theme are fitted on the training split;
    3. weak labels and self-training over a sample of the unlabelled press corpus are tried as
       extra training rows; a variant replaces the plain model only if it raises validation
       macro-AP by ``config.augmentation_gain``;
    4. each classifier is Platt-calibrated on the validation split, and each theme's threshold
       is the one with the best validation F1;
    5. the test split is scored once, together with the keyword baseline.

    Returns the metrics that are also written to ``metrics.json``.
    """
    started = time.perf_counter()
    config = config or TrainingConfig()
    output = Path(output)
    themes = load_themes(themes_path)
    slugs = [theme.slug for theme in themes]
    documents = load_labelled(
        slugs, labels_dir=labels_dir, press_dir=press_dir, repo_root=repo_root
    )
    splits = assign_splits(documents, slugs, config)
    parts = {
        name: [d for d in documents if splits[d.id] == name]
        for name in ("train", "validation", "test")
    }
    texts = {name: [normalize_text(d.text) for d in docs] for name, docs in parts.items()}
    y = {name: label_matrix([d.themes for d in docs], slugs) for name, docs in parts.items()}

    features = build_features(config).fit(texts["train"])

    def matrix(batch: Sequence[str]) -> sparse.csr_matrix:
        return feature_matrix(features, themes, config.keyword_scale, batch)

    x_train, x_validation = matrix(texts["train"]), matrix(texts["validation"])
    plain = fit_linears(x_train, y["train"], slugs, config)
    unlabelled = unlabelled_texts(
        press_dir, {d.id for d in documents}, config.unlabelled_sample, config.seed
    )
    variants = {"none": plain}
    if unlabelled:  # a press directory without unlabelled documents leaves nothing to add
        x_unlabelled = matrix(unlabelled)
        weak = weak_extra(x_unlabelled, unlabelled, themes, config)
        variants["weak_labels"] = fit_linears(x_train, y["train"], slugs, config, weak)
        pseudo = self_training_extra(x_unlabelled, plain, config)
        variants["self_training"] = fit_linears(x_train, y["train"], slugs, config, pseudo)
    comparison = {
        name: _validation_scores(linears, x_validation, y["validation"], slugs)
        for name, linears in variants.items()
    }
    chosen = max(
        comparison,
        key=lambda name: (
            comparison[name]["macro_ap"] - (0.0 if name == "none" else config.augmentation_gain)
        ),
    )

    for column, slug in enumerate(slugs):
        if not 0 < y["validation"][:, column].sum() < len(parts["validation"]):
            raise ValueError(f"theme '{slug}' needs positive and negative validation documents")
    classifiers = {
        slug: calibrate(variants[chosen][slug], x_validation, y["validation"][:, column])
        for column, slug in enumerate(slugs)
    }
    thresholds = {
        slug: best_threshold(
            y["validation"][:, column], classifiers[slug].predict_proba(x_validation)[:, 1]
        )
        for column, slug in enumerate(slugs)
    }
    model = ThemeModel(
        themes=themes,
        features=features,
        classifiers=classifiers,
        thresholds=thresholds,
        keyword_scale=config.keyword_scale,
        version=f"themes-{config.digest(themes, documents)}",
    )
    examples = {
        name: [{"id": d.id, "text": d.text, "themes": list(d.themes)} for d in docs]
        for name, docs in parts.items()
    }
    metrics = {
        "version": model.version,
        "split": _split_report(documents, splits, slugs, config),
        "augmentation": {"chosen": chosen, "validation": comparison},
        "validation": evaluate_themes(model, examples["validation"]),
        "test": {
            "model": evaluate_themes(model, examples["test"]),
            "keyword_baseline": evaluate_themes(
                KeywordThemeModel(themes, config.rule), examples["test"]
            ),
            "calibration": calibration_report(model, examples["test"]),
            "bootstrap_95": bootstrap_macro_f1(
                model, KeywordThemeModel(themes, config.rule), examples["test"], seed=config.seed
            ),
        },
        "thresholds": thresholds,
    }
    training = {
        "documents": {name: len(docs) for name, docs in parts.items()},
        "unlabelled_documents": len(unlabelled),
        "augmentation": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }
    model.save(output, config=config, training=training)
    (output / METRICS_FILE).write_text(_json(metrics), encoding="utf-8")
    return metrics


def _validation_scores(
    linears: dict[str, LogisticRegression], x: Any, y: np.ndarray, slugs: Sequence[str]
) -> dict[str, Any]:
    """Average precision per theme on validation (see :func:`macro_average_precision`)."""
    decisions = np.column_stack([linears[slug].decision_function(x) for slug in slugs])
    return macro_average_precision(y, decisions, slugs)


def _split_report(
    documents: Sequence[LabelledDocument],
    splits: dict[str, str],
    slugs: Sequence[str],
    config: TrainingConfig,
) -> dict[str, Any]:
    """Sizes, sources and label counts per split, and the test documents by id."""
    report: dict[str, Any] = {
        "seed": config.seed,
        "test_fraction": config.test_fraction,
        "validation_fraction": config.validation_fraction,
        "test_sources": sorted(TEST_SOURCES),
    }
    for name in ("train", "validation", "test"):
        docs = [d for d in documents if splits[d.id] == name]
        report[name] = {
            "documents": len(docs),
            "sources": dict(sorted(Counter(d.source for d in docs).items())),
            "label_counts": _label_counts(docs, slugs),
        }
    report["label_counts_by_source"] = {
        source: _label_counts([d for d in documents if d.source == source], slugs)
        for source in sorted({d.source for d in documents})
    }
    report["test_ids"] = sorted(d.id for d in documents if splits[d.id] == "test")
    return report


def _label_counts(documents: Sequence[Any], slugs: Sequence[str]) -> dict[str, int]:
    counts = Counter(slug for document in documents for slug in document.themes)
    return {slug: counts.get(slug, 0) for slug in slugs} | {
        "no_theme": sum(1 for document in documents if not document.themes)
    }


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


# --- the trained model ------------------------------------------------------------------------


def word_with_ngram(ngram: str, lowered: str) -> str:
    """The first word of ``lowered`` that contains a ``char_wb`` n-gram, or the n-gram itself.

    A space at either end of the n-gram marks the edge of a word (" bost" starts a word). One
    regular-expression search finds the word; the n-gram is returned as it is when it holds
    characters that are not word characters, or when no word contains it.
    """
    core = ngram.strip()
    if not re.fullmatch(r"\w+", core):
        return core
    before = r"(?<!\w)" if ngram.startswith(" ") else r"\w*"
    after = r"(?!\w)" if ngram.endswith(" ") else r"\w*"
    match = re.search(before + re.escape(core) + after, lowered)
    return match.group(0) if match else core


class ThemeModel:
    """A trained theme classifier: calibrated scores, per-theme thresholds, explanations."""

    def __init__(
        self,
        *,
        themes: Sequence[Theme],
        features: FeatureUnion,
        classifiers: dict[str, CalibratedClassifierCV],
        thresholds: dict[str, float],
        keyword_scale: float,
        version: str,
    ) -> None:
        self.themes = list(themes)
        self.features = features
        self.classifiers = classifiers
        self.thresholds = thresholds
        self.keyword_scale = keyword_scale
        self.version = version
        self._feature_names: list[str] | None = None

    @property
    def slugs(self) -> list[str]:
        """Theme slugs in taxonomy order."""
        return [theme.slug for theme in self.themes]

    @classmethod
    def load(cls, model_dir: Path = DEFAULT_THEME_MODEL) -> ThemeModel:
        """Load a model saved by :func:`train_themes`, trusting only :data:`TRUSTED_TYPES`."""
        model_dir = Path(model_dir)
        files = [model_dir / name for name in (MODEL_FILE, THRESHOLDS_FILE, METADATA_FILE)]
        missing = [file.name for file in files if not file.is_file()]
        if missing:
            raise ThemeModelMissingError(
                f"No theme model in {model_dir} (missing {', '.join(missing)}). "
                "Train one with `pipeline train-themes`."
            )
        import skops.io as sio  # here, not at the top: its import scans sklearn for a second

        stored = sio.load(files[0], trusted=TRUSTED_TYPES)
        if "vocabularies" not in stored:
            raise ThemesError(
                f"{files[0]} was saved by an older version of the pipeline (vocabularies inside "
                "the features). Train it again with `pipeline train-themes`."
            )
        thresholds = json.loads(files[1].read_text(encoding="utf-8"))
        metadata = json.loads(files[2].read_text(encoding="utf-8"))
        themes = [
            Theme(
                slug=t["slug"],
                label=t["label"],
                definition=t["definition"],
                keywords=tuple(t["keywords"]),
                pattern=compile_keywords(t["keywords"]),
            )
            for t in metadata["themes"]
        ]
        return cls(
            themes=themes,
            features=_with_vocabularies(stored["features"], stored["vocabularies"]),
            classifiers=stored["classifiers"],
            thresholds={slug: float(value) for slug, value in thresholds.items()},
            keyword_scale=float(metadata["config"]["keyword_scale"]),
            version=metadata["version"],
        )

    def save(self, output: Path, *, config: TrainingConfig, training: dict[str, Any]) -> None:
        """Write the skops file, thresholds and metadata (with the theme definitions used)."""
        output.mkdir(parents=True, exist_ok=True)
        features, vocabularies = _vocabularies(self.features)
        stored = {
            "features": features,
            "vocabularies": vocabularies,
            "classifiers": self.classifiers,
        }
        import skops.io as sio

        sio.dump(stored, output / MODEL_FILE, compression=zipfile.ZIP_DEFLATED)
        (output / THRESHOLDS_FILE).write_text(_json(self.thresholds), encoding="utf-8")
        metadata = {
            "version": self.version,
            "sklearn": sklearn.__version__,
            "config": asdict(config),
            "themes": [
                {
                    "slug": t.slug,
                    "label": t.label,
                    "definition": t.definition,
                    "keywords": list(t.keywords),
                }
                for t in self.themes
            ],
            "training": training,
        }
        (output / METADATA_FILE).write_text(_json(metadata), encoding="utf-8")

    def scores(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Calibrated score of every theme for every text, each in [0, 1]."""
        normalized = [normalize_text(text) for text in texts]
        if not normalized:
            return []
        return self._scores(self._matrix(normalized))

    def predict(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Only the themes at or above their threshold, highest score first."""
        return [_above(scores, self.thresholds) for scores in self.scores(texts)]

    def predict_with_terms(
        self, texts: Sequence[str], k: int = 8
    ) -> list[list[tuple[str, float, tuple[str, ...]]]]:
        """:meth:`predict` plus, for each theme found, the terms that drove its score.

        One feature matrix serves both, so explaining costs little next to scoring.
        """
        normalized = [normalize_text(text) for text in texts]
        if not normalized:
            return []
        x = self._matrix(normalized)
        results = []
        for row, scores in enumerate(self._scores(x)):
            found = _above(scores, self.thresholds)
            if not found:
                results.append([])
                continue
            features = x[row]  # sliced once for all the themes found
            results.append(
                [
                    (slug, score, tuple(self._terms(features, normalized[row], slug, k)))
                    for slug, score in found
                ]
            )
        return results

    def explain(self, text: str, slug: str, k: int = 8) -> list[str]:
        """Terms that pushed ``slug``'s score up most for this text.

        These are the features with the largest positive weight x value contribution: words
        and word pairs as they are, character n-grams as the word of the text that contains
        them, and a theme's keyword counts as the keywords matched in the text.
        """
        _theme_by_slug(self.themes, slug)
        normalized = normalize_text(text)
        return self._terms(self._matrix([normalized]), normalized, slug, k)

    def _matrix(self, normalized: Sequence[str]) -> sparse.csr_matrix:
        return feature_matrix(self.features, self.themes, self.keyword_scale, normalized)

    def _scores(self, x: sparse.csr_matrix) -> list[dict[str, float]]:
        columns = {slug: clf.predict_proba(x)[:, 1] for slug, clf in self.classifiers.items()}
        return [
            {slug: float(columns[slug][row]) for slug in self.slugs} for row in range(x.shape[0])
        ]

    def _terms(self, row: sparse.csr_matrix, normalized: str, slug: str, k: int) -> list[str]:
        linear = self.classifiers[slug].calibrated_classifiers_[0].estimator.estimator
        contributions = row.data * linear.coef_[0][row.indices]
        names = self._names()
        lowered = normalized.lower()
        terms: list[str] = []
        for position in np.argsort(-contributions, kind="stable"):
            if contributions[position] <= 0 or len(terms) >= k:
                break
            for term in self._readable(names[row.indices[position]], lowered, normalized):
                if term and term not in terms and len(terms) < k:
                    terms.append(term)
        return terms

    def _readable(self, feature: str, lowered: str, normalized: str) -> list[str]:
        """A feature as a reader would recognise it (see :meth:`explain`)."""
        kind, _, term = feature.partition("__")
        if kind in ("keywords", "keyword_density"):
            theme = _theme_by_slug(self.themes, term)
            return [word for word, _ in Counter(theme.matches(normalized)).most_common(2)]
        if kind != "char":
            return [term]
        return [word_with_ngram(term, lowered)]

    def _names(self) -> list[str]:
        if self._feature_names is None:
            self._feature_names = list(self.features.get_feature_names_out()) + (
                keyword_feature_names(self.themes)
            )
        return self._feature_names


def calibration_report(model: ThemeModel, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How honest the scores are on labelled examples, over all (document, theme) pairs.

    Brier score, expected calibration error over ten equal-width bins, and the bins themselves
    (mean score next to the share of true themes), so that "0.8" can be checked to mean about
    eight in ten.
    """
    scored = model.scores([example["text"] for example in examples])
    pairs = [
        (scores[slug], slug in example["themes"])
        for scores, example in zip(scored, examples, strict=True)
        for slug in model.slugs
    ]
    if not pairs:
        return {"pairs": 0}
    probability = np.array([score for score, _ in pairs])
    truth = np.array([gold for _, gold in pairs], dtype=float)
    bins = []
    error = 0.0
    for low in np.round(np.arange(0.0, 1.0, 0.1), 1):
        inside = (probability >= low) & ((probability < low + 0.1) | (low == 0.9))
        if inside.any():
            mean_score, share = probability[inside].mean(), truth[inside].mean()
            error += inside.sum() / len(pairs) * abs(mean_score - share)
            bins.append(
                {
                    "range": [float(low), round(float(low) + 0.1, 1)],
                    "pairs": int(inside.sum()),
                    "mean_score": round(float(mean_score), 4),
                    "share_true": round(float(share), 4),
                }
            )
    return {
        "pairs": len(pairs),
        "brier": round(float(np.mean((probability - truth) ** 2)), 4),
        "expected_calibration_error": round(error, 4),
        "bins": bins,
    }


# --- evaluation -------------------------------------------------------------------------------


def evaluate_themes(model: ThemePredictor, examples: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per-theme precision, recall, F1 and support, plus macro and micro F1.

    ``examples`` are ``{"id", "text", "themes": [slugs]}``. Macro-F1 averages the themes that
    have at least one gold positive: a theme absent from the gold set cannot be measured, and
    counting it as 0 or 1 would say more about the sample than about the model.
    """
    examples = list(examples)
    slugs = list(model.slugs)
    for example in examples:
        unknown = set(example["themes"]) - set(slugs)
        if unknown:
            raise ValueError(f"example {example.get('id')!r}: unknown themes {sorted(unknown)}")
    predicted = [{slug for slug, _ in row} for row in model.predict([e["text"] for e in examples])]
    counts = {slug: Counter() for slug in slugs}
    for guessed, example in zip(predicted, examples, strict=True):
        for slug in slugs:
            outcome = {(True, True): "tp", (True, False): "fp", (False, True): "fn"}
            key = outcome.get((slug in guessed, slug in example["themes"]))
            if key:
                counts[slug][key] += 1
    per_theme = {slug: _prf(c["tp"], c["fp"], c["fn"]) for slug, c in counts.items()}
    totals = sum(counts.values(), Counter())
    measured = [scores["f1"] for scores in per_theme.values() if scores["support"] > 0]
    return {
        "documents": len(examples),
        "per_theme": per_theme,
        "macro_f1": round(sum(measured) / len(measured), 4) if measured else 0.0,
        "micro": _prf(totals["tp"], totals["fp"], totals["fn"]),
    }


def bootstrap_macro_f1(
    model: ThemePredictor,
    baseline: ThemePredictor,
    examples: Sequence[dict[str, Any]],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95 % intervals of macro-F1 for a model, a baseline and their difference.

    Documents are resampled with replacement (the same resamples for both, so the difference
    is paired). With 6 to 30 positives per theme a single F1 moves by 0.05 or more with one
    document, and the intervals say how much of a difference is noise.
    """
    slugs = list(model.slugs)
    gold = label_matrix([example["themes"] for example in examples], slugs).astype(bool)
    texts = [example["text"] for example in examples]
    guesses = [
        label_matrix([[slug for slug, _ in row] for row in predictor.predict(texts)], slugs)
        for predictor in (model, baseline)
    ]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(examples), size=(resamples, len(examples)))
    weights = np.stack([np.bincount(draw, minlength=len(examples)) for draw in draws])
    support = weights @ gold
    scores = []
    for guess in guesses:
        guess = guess.astype(bool)
        tp, fp, fn = weights @ (guess & gold), weights @ (guess & ~gold), weights @ (~guess & gold)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        measured = support > 0
        scores.append((f1 * measured).sum(axis=1) / measured.sum(axis=1))

    def interval(values: np.ndarray) -> list[float]:
        return [round(float(q), 4) for q in np.quantile(values, [0.025, 0.975])]

    return {
        "model": interval(scores[0]),
        "keyword_baseline": interval(scores[1]),
        "difference": interval(scores[0] - scores[1]),
    }


def _prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    return {**precision_recall_f1(tp, tp + fp, tp + fn), "support": tp + fn, "predicted": tp + fp}
