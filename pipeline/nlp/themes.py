"""Theme classification: which of the sector's themes a document is substantially about.

Three layers, each usable on its own:

* the taxonomy in ``corpus/themes.yaml`` (slug, label, definition, Swedish keyword stems),
  validated on load so that a typo fails loudly with the file, theme and key named;
* keyword rules (:func:`weak_labels`, :class:`KeywordThemeModel`): a theme fires when its
  keywords recur in a document, not on a single passing mention. They serve as the baseline
  and as the weak labels the first model is trained on, since no hand-labelled training set
  exists for this domain;
* a scikit-learn model (:func:`train_themes`, :class:`ThemeModel`): TF-IDF word and character
  n-grams with one calibrated logistic regression per theme, trained on the weak labels of the
  government press corpus. It generalises beyond the literal keywords (other inflections,
  compounds, vocabulary that co-occurs with a theme). Themes with too few weak positives to
  learn from are scored by the keyword rule instead, and the metadata says so.

Models are saved with ``skops`` and loaded against an explicit list of trusted types: loading a
pickle runs arbitrary code, and a model directory is a file someone may hand us.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import sklearn
import skops.io as sio
import yaml
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import FeatureUnion

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_THEMES = REPO_ROOT / "corpus" / "themes.yaml"
DEFAULT_THEME_MODEL = Path(__file__).resolve().parents[2] / "models" / "themes"
DEFAULT_PRESS_DIR = REPO_ROOT.parent / "shared" / "data" / "press"
DEFAULT_HELDOUT = REPO_ROOT / "corpus" / "labels" / "press-heldout.jsonl"

MODEL_FILE = "themes.skops"
THRESHOLDS_FILE = "thresholds.json"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"

# Every type the saved model may contain. skops refuses anything else, so a tampered or
# foreign file fails to load instead of instantiating arbitrary classes.
TRUSTED_TYPES = [
    "builtins.dict",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "numpy.float32",
    "numpy.float64",
    "numpy.ndarray",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.FeatureUnion",
]

_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
_THEME_KEYS = ("slug", "label", "definition", "keywords")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


class ThemesError(ValueError):
    """The themes file is unreadable or breaks the schema; the message names file, theme, key."""


class ThemeModelMissingError(FileNotFoundError):
    """No trained theme model where one was expected."""


@dataclass(frozen=True)
class Theme:
    """One theme of the taxonomy, with its keyword rule compiled once."""

    slug: str
    label: str
    definition: str
    keywords: tuple[str, ...]
    pattern: re.Pattern[str] = field(compare=False, repr=False)

    def count(self, text: str) -> int:
        """Number of (non-overlapping) keyword matches in an already normalised text."""
        return sum(1 for _ in self.pattern.finditer(text))

    def matches(self, text: str) -> list[str]:
        """The matched words, lower-cased, in order of appearance."""
        return [m.group(0).lower() for m in self.pattern.finditer(text)]


# --- taxonomy ---------------------------------------------------------------------------------


def compile_keywords(keywords: Sequence[str]) -> re.Pattern[str]:
    """One case-insensitive alternation in which every keyword starts at a word beginning.

    Starting at a word beginning keeps "vräk" out of "avräkning" and "gäng" out of
    "tillgänglig"; the trailing ``\\w*`` lets a stem take any Swedish ending.
    """
    alternatives = "|".join(f"(?:{keyword})" for keyword in keywords)
    return re.compile(rf"(?<!\w)(?:{alternatives})\w*", re.IGNORECASE)


def load_themes(path: Path = DEFAULT_THEMES) -> list[Theme]:
    """Read and validate the taxonomy; raise :class:`ThemesError` naming file, theme and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ThemesError(f"{path}: cannot read themes file: {error}") from error
    except yaml.YAMLError as error:
        raise ThemesError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("themes"), list):
        raise ThemesError(f"{path}: key 'themes': expected a list of themes at the top level")
    if not data["themes"]:
        raise ThemesError(f"{path}: key 'themes': the list is empty")
    themes: list[Theme] = []
    for index, entry in enumerate(data["themes"]):
        theme = _parse_theme(path, index, entry)
        if any(known.slug == theme.slug for known in themes):
            raise ThemesError(f"{path}: theme '{theme.slug}': key 'slug': duplicate slug")
        themes.append(theme)
    return themes


def _parse_theme(path: Path, index: int, entry: Any) -> Theme:
    """Validate one theme entry; the theme is named by slug when it has one, else by position."""
    name = f"#{index + 1}"
    if not isinstance(entry, dict):
        raise ThemesError(f"{path}: theme '{name}': expected a mapping with keys {_THEME_KEYS}")
    slug = entry.get("slug")
    if isinstance(slug, str) and slug:
        name = slug

    def fail(key: str, problem: str) -> ThemesError:
        return ThemesError(f"{path}: theme '{name}': key '{key}': {problem}")

    for key in entry:
        if key not in _THEME_KEYS:
            raise fail(str(key), f"unknown key (allowed: {', '.join(_THEME_KEYS)})")
    for key in _THEME_KEYS:
        if key not in entry:
            raise fail(key, "missing")
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise fail("slug", "must be lower-case ASCII letters, digits or '_', e.g. 'hemloshet'")
    for key in ("label", "definition"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise fail(key, "must be a non-empty string")
    keywords = entry["keywords"]
    if not isinstance(keywords, list) or not keywords:
        raise fail("keywords", "must be a non-empty list of keyword stems or regexes")
    for keyword in keywords:
        if not isinstance(keyword, str) or not keyword.strip():
            raise fail("keywords", f"entry {keyword!r} is not a non-empty string")
        try:
            re.compile(keyword)
        except re.error as error:
            raise fail("keywords", f"{keyword!r} is not a valid regex: {error}") from error
    return Theme(
        slug=slug,
        label=entry["label"].strip(),
        definition=" ".join(entry["definition"].split()),
        keywords=tuple(keywords),
        pattern=compile_keywords(keywords),
    )


# --- text -------------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Canonical form for both keyword rules and the model.

    Government pages hyphenate long compounds with soft hyphens ("brotts\\u00adlighet") and
    non-breaking spaces; left in, they split words for the tokenizer and the keyword regexes.
    """
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return " ".join(text.split())


def read_press_document(path: Path) -> str:
    """Title and body of a press-corpus Markdown file as plain text.

    Link targets are dropped (they are URL paths, not prose) and the ``#`` heading marks go, so
    the model sees the words a reader sees.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line.lstrip("#").strip() for line in lines)
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


# --- training ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that shapes a trained model; its hash is part of the model version.

    The feature caps keep the saved model well under 20 MB (11 themes x 80k float64 weights is
    about 7 MB). ``min_positives`` is the fewest weak positives a theme needs before a
    classifier is fitted; below it the keyword rule scores the theme.
    """

    word_max_features: int = 30_000
    word_min_df: int = 3
    char_max_features: int = 50_000
    char_min_df: int = 5
    max_df: float = 0.9
    C: float = 2.0
    calibration_folds: int = 3
    validation_fraction: float = 0.2
    min_positives: int = 10
    seed: int = 0
    rule: KeywordRule = field(default_factory=KeywordRule)

    def digest(self, themes: Sequence[Theme], heldout_paths: Iterable[str]) -> str:
        """Short hash of config, keyword rules, held-out set and sklearn version.

        The corpus itself is not hashed; the metadata records how many documents it had.
        """
        payload = {
            "config": asdict(self),
            "themes": [[t.slug, list(t.keywords)] for t in themes],
            "heldout": sorted(heldout_paths),
            "sklearn": sklearn.__version__,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:8]


def build_features(config: TrainingConfig) -> FeatureUnion:
    """Word 1-2-grams plus char_wb 3-5-grams.

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
        ngram_range=(3, 5),
        min_df=config.char_min_df,
        max_df=config.max_df,
        max_features=config.char_max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    return FeatureUnion([("word", word), ("char", char)])


def build_classifier(config: TrainingConfig) -> CalibratedClassifierCV:
    """Balanced logistic regression with sigmoid calibration, one per theme.

    ``ensemble=False`` keeps a single linear model (fitted on all data, calibrated on
    cross-validated scores), which makes :meth:`ThemeModel.explain` a plain dot product.
    """
    linear = LogisticRegression(
        C=config.C, class_weight="balanced", solver="liblinear", max_iter=1000
    )
    return CalibratedClassifierCV(
        linear, method="sigmoid", cv=config.calibration_folds, ensemble=False
    )


def read_heldout(path: Path) -> list[dict[str, Any]]:
    """Hand-labelled lines ``{"path", "themes"}`` (paths relative to the press data dir)."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("path"), str) or not isinstance(row.get("themes"), list):
            raise ValueError(f"{path}:{number}: expected {{'path': str, 'themes': [slugs]}}")
        rows.append(row)
    return rows


def press_texts(press_dir: Path, exclude: set[str]) -> list[str]:
    """Normalised texts of the Markdown files under ``press_dir`` whose relative path is not
    in ``exclude`` (the held-out documents), in path order."""
    return [
        normalize_text(read_press_document(file))
        for file in sorted(Path(press_dir).rglob("*.md"))
        if file.relative_to(press_dir).as_posix() not in exclude
    ]


def _label_matrix(labels: Sequence[set[str]], slugs: Sequence[str]) -> np.ndarray:
    return np.array([[slug in doc for slug in slugs] for doc in labels], dtype=np.int8)


def _stratification_key(matrix: np.ndarray, slugs: Sequence[str]) -> list[str]:
    """Rarest weak label of each document, so that rare themes land in both splits."""
    totals = matrix.sum(axis=0)
    keys = []
    for row in matrix:
        present = list(np.flatnonzero(row))
        keys.append(slugs[min(present, key=lambda i: totals[i])] if present else "-")
    counts = Counter(keys)
    return [key if counts[key] >= 2 else "-" for key in keys]


def _fit(
    texts: Sequence[str], matrix: np.ndarray, slugs: Sequence[str], config: TrainingConfig
) -> tuple[FeatureUnion, dict[str, CalibratedClassifierCV]]:
    """Fit features and one classifier per theme that has enough positives."""
    features = build_features(config)
    x = features.fit_transform(texts)
    _plain_vocabularies(features)
    classifiers = {}
    for column, slug in enumerate(slugs):
        y = matrix[:, column]
        if y.sum() >= config.min_positives:
            classifiers[slug] = build_classifier(config).fit(x, y)
    return features, classifiers


def _plain_vocabularies(features: FeatureUnion) -> None:
    """Store vocabulary indices as Python ints instead of numpy integers.

    skops writes every numpy scalar as a file of its own inside the zip: with 80k terms that
    made the model 20 MB and took minutes to save and load. Python ints go into the schema.
    """
    for _, vectorizer in features.transformer_list:
        vectorizer.vocabulary_ = {term: int(i) for term, i in vectorizer.vocabulary_.items()}


def _best_threshold(y: np.ndarray, scores: np.ndarray) -> float:
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


def train_themes(
    press_dir: Path,
    themes_path: Path,
    output: Path,
    *,
    heldout: Path,
    config: TrainingConfig | None = None,
) -> dict[str, Any]:
    """Train on weak labels of the press corpus, pick thresholds, evaluate, save; return metrics.

    The held-out documents are excluded from everything (vocabulary, training, thresholds) and
    only used for the final evaluation. Thresholds come from a validation split of the weakly
    labelled training documents; the final classifiers are then refitted on all of them, so
    rare themes keep every positive they have.
    """
    started = time.perf_counter()
    config = config or TrainingConfig()
    press_dir, output = Path(press_dir), Path(output)
    themes = load_themes(themes_path)
    slugs = [theme.slug for theme in themes]
    gold = read_heldout(heldout)
    heldout_paths = {row["path"] for row in gold}
    texts = press_texts(press_dir, exclude=heldout_paths)
    if not texts:
        raise ValueError(f"no training documents (*.md) found under {press_dir}")
    matrix = _label_matrix(weak_labels(texts, themes, config.rule), slugs)

    thresholds = _validation_thresholds(texts, matrix, slugs, config)
    features, classifiers = _fit(texts, matrix, slugs, config)
    model = ThemeModel(
        themes=themes,
        features=features,
        classifiers=classifiers,
        thresholds={slug: thresholds.get(slug, 0.5) for slug in slugs},
        rule=config.rule,
        version=_version(config.digest(themes, heldout_paths)),
    )
    examples = _heldout_examples(press_dir, gold)
    metrics = {
        "version": model.version,
        "heldout": {
            "file": Path(heldout).name,
            "documents": len(examples),
            "label_counts": _label_counts(examples, slugs),
        },
        "model": evaluate_themes(model, examples),
        "keyword_baseline": evaluate_themes(KeywordThemeModel(themes, config.rule), examples),
    }
    training = {
        "documents": len(texts),
        "weak_positive_counts": dict(zip(slugs, map(int, matrix.sum(axis=0)), strict=True)),
        "documents_without_theme": int((matrix.sum(axis=1) == 0).sum()),
        "theme_sources": model.sources,
        "seconds": round(time.perf_counter() - started, 1),
    }
    model.save(output, config=config, training=training)
    metrics["training"] = training | {"model_bytes": (output / MODEL_FILE).stat().st_size}
    (output / METRICS_FILE).write_text(_json(metrics), encoding="utf-8")
    return metrics


def _validation_thresholds(
    texts: Sequence[str], matrix: np.ndarray, slugs: Sequence[str], config: TrainingConfig
) -> dict[str, float]:
    """Per-theme thresholds maximising F1 against the weak labels of a validation split."""
    indices = np.arange(len(texts))
    keys = _stratification_key(matrix, slugs)
    n_val = int(np.ceil(config.validation_fraction * len(texts)))
    # Stratifying needs every key at least twice and no more keys than validation documents;
    # a corpus too small for that (only tests use one) gets a plain random split.
    stratify = keys if len(set(keys)) <= n_val and Counter(keys)["-"] != 1 else None
    train_idx, val_idx = train_test_split(
        indices, test_size=n_val, random_state=config.seed, stratify=stratify
    )
    features, classifiers = _fit([texts[i] for i in train_idx], matrix[train_idx], slugs, config)
    x_val = features.transform([texts[i] for i in val_idx])
    thresholds = {}
    for slug, classifier in classifiers.items():
        y_val = matrix[val_idx, slugs.index(slug)]
        thresholds[slug] = _best_threshold(y_val, classifier.predict_proba(x_val)[:, 1])
    return thresholds


def _version(digest: str) -> str:
    return f"{datetime.now(UTC):%Y-%m-%d}-{digest}"


def _heldout_examples(press_dir: Path, gold: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn held-out path labels into ``{"id", "text", "themes"}`` examples."""
    examples = []
    for row in gold:
        file = press_dir / row["path"]
        if not file.is_file():
            raise FileNotFoundError(f"held-out document {row['path']} not found in {press_dir}")
        text = read_press_document(file)
        examples.append({"id": row["path"], "text": text, "themes": row["themes"]})
    return examples


def _label_counts(examples: Sequence[dict[str, Any]], slugs: Sequence[str]) -> dict[str, int]:
    counts = Counter(slug for example in examples for slug in example["themes"])
    return {slug: counts.get(slug, 0) for slug in slugs} | {
        "no_theme": sum(1 for example in examples if not example["themes"])
    }


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


# --- the trained model ------------------------------------------------------------------------


class ThemeModel:
    """A trained theme classifier: calibrated scores, per-theme thresholds, explanations."""

    def __init__(
        self,
        *,
        themes: Sequence[Theme],
        features: FeatureUnion,
        classifiers: dict[str, CalibratedClassifierCV],
        thresholds: dict[str, float],
        rule: KeywordRule,
        version: str,
    ) -> None:
        self.themes = list(themes)
        self.features = features
        self.classifiers = classifiers
        self.thresholds = thresholds
        self.rule = rule
        self.version = version
        self._feature_names: np.ndarray | None = None

    @property
    def slugs(self) -> list[str]:
        """Theme slugs in taxonomy order."""
        return [theme.slug for theme in self.themes]

    @property
    def sources(self) -> dict[str, str]:
        """Per theme, whether the classifier ("model") or the keyword rule scores it."""
        return {slug: "model" if slug in self.classifiers else "keywords" for slug in self.slugs}

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
        stored = sio.load(files[0], trusted=TRUSTED_TYPES)
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
            features=stored["features"],
            classifiers=stored["classifiers"],
            thresholds={slug: float(value) for slug, value in thresholds.items()},
            rule=KeywordRule(**metadata["config"]["rule"]),
            version=metadata["version"],
        )

    def save(self, output: Path, *, config: TrainingConfig, training: dict[str, Any]) -> None:
        """Write the skops file, thresholds and metadata (with the theme definitions used)."""
        output.mkdir(parents=True, exist_ok=True)
        stored = {"features": self.features, "classifiers": self.classifiers}
        sio.dump(stored, output / MODEL_FILE, compression=zipfile.ZIP_DEFLATED)
        (output / THRESHOLDS_FILE).write_text(_json(self.thresholds), encoding="utf-8")
        metadata = {
            "version": self.version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
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
        """Score of every theme for every text, each in [0, 1]."""
        normalized = [normalize_text(text) for text in texts]
        if not normalized:
            return []
        x = self.features.transform(normalized)
        columns = {
            slug: classifier.predict_proba(x)[:, 1] for slug, classifier in self.classifiers.items()
        }
        keyword_themes = [theme for theme in self.themes if theme.slug not in self.classifiers]
        results = []
        for row, text in enumerate(normalized):
            fallback = keyword_scores(text, keyword_themes, self.rule) if keyword_themes else {}
            results.append(
                {
                    slug: float(columns[slug][row]) if slug in columns else fallback[slug]
                    for slug in self.slugs
                }
            )
        return results

    def predict(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Only the themes at or above their threshold, highest score first."""
        return [_above(scores, self.thresholds) for scores in self.scores(texts)]

    def explain(self, text: str, slug: str, k: int = 8) -> list[str]:
        """Terms that pushed ``slug``'s score up most for this text.

        For a classifier theme these are the features with the largest positive
        weight x tf-idf contribution; character n-grams are shown as the letters they cover.
        For a keyword-scored theme they are the keyword matches.
        """
        theme = _theme_by_slug(self.themes, slug)
        normalized = normalize_text(text)
        if slug not in self.classifiers:
            return [word for word, _ in Counter(theme.matches(normalized)).most_common(k)]
        row = self.features.transform([normalized]).tocsr()
        weights = self.classifiers[slug].calibrated_classifiers_[0].estimator.coef_[0]
        contributions = row.data * weights[row.indices]
        names = self._names()
        words = re.findall(r"\w+", normalized.lower())
        terms: list[str] = []
        for position in np.argsort(-contributions):
            if contributions[position] <= 0 or len(terms) == k:
                break
            term = _readable(names[row.indices[position]], words)
            if term and term not in terms:
                terms.append(term)
        return terms

    def _names(self) -> np.ndarray:
        if self._feature_names is None:
            self._feature_names = self.features.get_feature_names_out()
        return self._feature_names


def _readable(feature: str, words: Sequence[str]) -> str:
    """A feature name as a reader would recognise it.

    Word n-grams are shown as they are. A character n-gram such as " hemlö" is shown as the
    first word of the text that contains it ("hemlösheten"), since fragments like "rbets" say
    little on their own.
    """
    kind, _, term = feature.partition("__")
    if kind != "char":
        return term
    for word in words:
        if term in f" {word} ":
            return word
    return term.strip()


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


def _prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "support": tp + fn,
        "predicted": tp + fp,
    }
