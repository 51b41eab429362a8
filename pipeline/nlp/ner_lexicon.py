"""The word lists behind the NER rules of :mod:`pipeline.nlp.ner_rules`, and their digest.

Titles, legal forms, sentence boundaries, the common words built from the press corpus and the
gazetteer's patterns decide what the rules do, so :func:`rules_version` digests them into the
NER version stored with each annotated document. This module does not import spaCy: the
batch's main process computes that version on every run to find the documents that need
annotating, and importing spaCy only for that would cost most of a run that finds nothing new.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from pipeline.nlp.gazetteer import default_gazetteer

RULES_REVISION = 1
"""Bump when the code of the rules changes what they produce."""

COMMON_WORDS_FILE = "common_words.txt"
"""In the model directory: one lower-case word per line (see :func:`build_common_words`)."""

SENTENCE_BOUNDARY = frozenset('.!?:–—-•*#(»”"')
"""Tokens after which the next word is capitalised because of its position, not its kind."""

TITLES = (
    "minister",
    "ministern",
    "statsråd",
    "statsrådet",
    "statssekreterare",
    "generaldirektör",
    "generaldirektören",
    "ordförande",
    "ordföranden",
    "kommunalråd",
    "kommunalrådet",
    "direktör",
    "vd",
    "chef",
    "chefen",
    "talesperson",
    "handläggare",
    "projektledare",
    "verksamhetschef",
    "samordnare",
)
"""Words that end a title written before a name: "socialminister", "integrationsministern",
"förvaltningschef", "ordförande". Matched as word endings, so compounds are covered."""

LEGAL_FORMS = frozenset({"AB", "HB", "KB", "ASA", "Oyj", "Ltd", "Inc"})
"""Company forms written after a name; "(publ)" may follow them."""


@lru_cache(maxsize=1)
def gazetteer_patterns() -> tuple[dict[str, str], ...]:
    """The EntityRuler patterns: names of organisations (ORG) and places (LOC) with genitives."""
    return tuple(default_gazetteer().ruler_patterns())


def build_common_words(texts: Iterable[str], *, ratio: int = 4, minimum: int = 3) -> list[str]:
    """Words written in lower case at least ``ratio`` times as often as capitalised where
    position does not explain the capital (not after a sentence boundary or at a line start),
    and at least ``minimum`` times in all."""
    import spacy

    tokenizer = spacy.blank("sv").tokenizer
    lower: Counter[str] = Counter()
    capitalised: Counter[str] = Counter()
    for text in texts:
        for line in text.splitlines():
            previous = None
            for token in tokenizer(line):
                word = token.text
                if word.isalpha() and word.islower():
                    lower[word] += 1
                elif word.isalpha() and word.istitle() and not _boundary(previous):
                    capitalised[word.lower()] += 1
                if not token.is_space:
                    previous = word
    return sorted(w for w, n in lower.items() if n >= minimum and n >= ratio * capitalised[w])


def _boundary(previous: str | None) -> bool:
    return previous is None or previous in SENTENCE_BOUNDARY


def read_common_words(model_dir: Path) -> frozenset[str]:
    """The model's common-word list; empty (the rule is off) for a model shipped without one."""
    path = Path(model_dir) / COMMON_WORDS_FILE
    if not path.is_file():
        return frozenset()
    return frozenset(path.read_text(encoding="utf-8").split())


def rules_version(common_words: frozenset[str] = frozenset()) -> str:
    """A short digest of the rules, the gazetteer names and the common words they use."""
    payload = json.dumps(
        [RULES_REVISION, TITLES, gazetteer_patterns(), sorted(common_words)], ensure_ascii=False
    )
    return "rules-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:8]
