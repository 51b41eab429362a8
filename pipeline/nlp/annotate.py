"""The NLP stage as one object: named entities and themes for a batch of texts.

The batch and ``pipeline annotate-text`` both go through :class:`Annotator`, so what a user sees
on the command line is exactly what lands in the database. Models are loaded once and texts
are processed in batches (``nlp.pipe`` and one matrix for the classifier).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.nlp.ner import DEFAULT_NER_MODEL, Entity, annotate, load_ner
from pipeline.nlp.themes import DEFAULT_THEME_MODEL, ThemeModel

ANNOTATED_LANGUAGES = frozenset({"sv", None})
"""Texts in other languages are kept but not run through the Swedish models."""


@dataclass(frozen=True)
class ThemeScore:
    """A theme assigned to a text, its calibrated score, and the terms that drove it."""

    theme: str
    score: float
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Annotation:
    """Entities and themes found in one text."""

    entities: list[Entity] = field(default_factory=list)
    themes: list[ThemeScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "entities": [
                {"start": e.start, "end": e.end, "label": e.label, "text": e.text}
                for e in self.entities
            ],
            "themes": [{"theme": t.theme, "score": round(t.score, 4)} for t in self.themes],
        }


class Annotator:
    """Holds the NER pipeline and the theme model, and applies both to batches of texts."""

    def __init__(
        self,
        ner_model: Path = DEFAULT_NER_MODEL,
        theme_model: Path = DEFAULT_THEME_MODEL,
        *,
        explain: bool = False,
        batch_size: int = 64,
    ):
        self.nlp = load_ner(ner_model)
        self.themes = ThemeModel.load(theme_model)
        self.explain = explain
        self.batch_size = batch_size

    @property
    def ner_version(self) -> str:
        meta = self.nlp.meta
        return f"{meta.get('name', 'ner')}-{meta.get('version', '0')}"

    @property
    def themes_version(self) -> str:
        return str(self.themes.version)

    def annotate(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[Annotation]:
        """Annotate ``texts``; empty texts and texts not in Swedish get an empty annotation."""
        languages = languages if languages is not None else [None] * len(texts)
        chosen = [
            i
            for i, (text, lang) in enumerate(zip(texts, languages, strict=True))
            if lang in ANNOTATED_LANGUAGES and text.strip()
        ]
        selected = [texts[i] for i in chosen]
        entities = list(annotate(self.nlp, selected, batch_size=self.batch_size))
        themes = self.themes.predict(selected) if selected else []
        results = [Annotation() for _ in texts]
        for position, index in enumerate(chosen):
            scored = [
                ThemeScore(
                    slug,
                    score,
                    tuple(self.themes.explain(texts[index], slug)) if self.explain else (),
                )
                for slug, score in themes[position]
            ]
            results[index] = Annotation(entities[position], scored)
        return results
