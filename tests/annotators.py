"""A stand-in for :class:`pipeline.nlp.annotate.Annotator` for tests about crawling, storing and
scheduling: it has the annotator's interface and records what the batch sends it, without
loading the models. Whether a text reaches annotation is what those tests check."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.nlp.annotate import Annotation


class RecordingAnnotator:
    """Records the texts it is sent and how often; with ``fail`` every call raises."""

    ner_version = "ner-test"
    themes_version = "themes-test"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0
        self.texts: list[str] = []

    def annotate(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[Annotation]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("modellen kunde inte läsas in")
        self.texts.extend(texts)
        return [Annotation() for _ in texts]
