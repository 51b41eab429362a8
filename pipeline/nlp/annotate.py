"""The NLP stage as one object: named entities and themes for a batch of texts.

The batch and ``pipeline annotate-text`` both go through :class:`Annotator`, so what a user sees
on the command line is exactly what lands in the database. Models are loaded once and texts
are processed in batches (``nlp.pipe`` and one matrix for the classifier).

The result types are read by processes that never annotate: the batch's main process receives
:class:`Annotation` objects from its workers. Importing this module therefore imports neither
spaCy nor scikit-learn; they come with the models, when an :class:`Annotator` is made.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.nlp.linking import LinkedMention, Linker, default_linker
from pipeline.nlp.ner import DEFAULT_NER_MODEL, Entity, annotate, load_ner
from pipeline.nlp.versions import DEFAULT_THEME_MODEL, ner_version

if TYPE_CHECKING:
    from pipeline.nlp.themes import ThemeModel

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
    """Entities and themes found in one text, and the entities linked to canonical ones.

    ``mentions`` runs parallel to ``entities``; it is what the store saves, while ``to_dict``
    (the ``annotate-text`` output) keeps to the model's spans.
    """

    entities: list[Entity] = field(default_factory=list)
    themes: list[ThemeScore] = field(default_factory=list)
    mentions: list[LinkedMention] = field(default_factory=list)

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
        explain: bool = True,
        batch_size: int = 64,
        link: bool = True,
    ):
        from pipeline.nlp.themes import ThemeModel  # see the module docstring

        self.nlp = load_ner(ner_model)
        self.themes: ThemeModel = ThemeModel.load(theme_model)
        self.explain = explain
        self.batch_size = batch_size
        self.link = link
        # Wall and CPU seconds spent per part ("ner", "themes", "link"), so a batch can say
        # where its annotation time goes, and tell work from waiting for a core.
        self.timings: Counter[str] = Counter()
        self.cpu_timings: Counter[str] = Counter()

    @property
    def linker(self) -> Linker:
        """The entity linker, built on first use (its place index takes seconds to build)."""
        return default_linker()

    @property
    def ner_version(self) -> str:
        return ner_version(self.nlp.meta)

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
        with self._timed("ner"):
            entities = list(annotate(self.nlp, selected, batch_size=self.batch_size))
        with self._timed("themes"):
            if not selected:
                themes = []
            elif self.explain:  # terms from the same feature matrix as the scores
                themes = self.themes.predict_with_terms(selected)
            else:
                themes = [[(s, p, ()) for s, p in row] for row in self.themes.predict(selected)]
        results = [Annotation() for _ in texts]
        with self._timed("link"):
            for position, index in enumerate(chosen):
                scored = [ThemeScore(slug, score, terms) for slug, score, terms in themes[position]]
                found = entities[position]
                linked = self.linker.link(texts[index], found) if self.link else []
                results[index] = Annotation(found, scored, linked)
        return results

    @contextmanager
    def _timed(self, part: str) -> Iterator[None]:
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.timings[part] += time.perf_counter() - started
            self.cpu_timings[part] += time.process_time() - started_cpu
