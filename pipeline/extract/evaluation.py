"""Scoring extraction against hand-checked pages: the shared ground of the tests and the bench.

An evaluation set is a folder of saved pages (``<name>.html``) each with a ``<name>.json`` that
says what a person reading the page sees as its document: title, date (value, precision, kind),
author, kind, language, contact people and main text. ``split`` says whether the page was used
to find extraction bugs (``dev``) or written afterwards and only measured (``holdout``).
Both ``tests/test_extraction_set.py`` and ``bench/extraction.py`` read it through
:func:`load_set` and score main texts with :func:`token_scores`, so a number in the README and
a failing test mean the same thing.

Main texts are compared as bags of words, as the usual web-extraction benchmarks do: paragraph
breaks, punctuation and word order do not count, a word kept that the reader does not see as
part of the article costs precision, and a word of the article that was lost costs recall.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.crawl.fetch import decode_html

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class ExpectedPage:
    """One saved page and what it should give."""

    name: str
    family: str
    split: str
    html: str
    url: str
    fetched_at: datetime
    title: str
    published: str | None
    date_precision: str | None
    date_kind: str | None
    author: str | None
    kind: str | None
    language: str
    contacts: tuple[dict[str, Any], ...]
    text: str


def load_set(directory: Path) -> list[ExpectedPage]:
    """Every page of an evaluation set, sorted by name.

    Pages are read as bytes and decoded the way the crawler decodes a response without a
    Content-Type charset, so a set can hold pages in Latin-1 without a ``<meta charset>``.
    """
    pages = []
    for expected_file in sorted(Path(directory).glob("*.json")):
        html_file = expected_file.with_suffix(".html")
        data = json.loads(expected_file.read_text(encoding="utf-8"))
        pages.append(
            ExpectedPage(
                name=expected_file.stem,
                family=data["family"],
                split=data["split"],
                html=decode_html(html_file.read_bytes()),
                url=data["url"],
                fetched_at=datetime.fromisoformat(data["fetched_at"].replace("Z", "+00:00")),
                title=data["title"],
                published=data["published"],
                date_precision=data["date_precision"],
                date_kind=data["date_kind"],
                author=data["author"],
                kind=data["kind"],
                language=data["language"],
                contacts=tuple(data["contacts"]),
                text=data["text"],
            )
        )
    return pages


def tokens(text: str) -> list[str]:
    """The words of ``text``, case-folded; numbers count as words."""
    return _WORD.findall(text.casefold())


@dataclass(frozen=True)
class TokenScores:
    """Bag-of-words precision, recall and F1 of an extracted text against the expected one."""

    precision: float
    recall: float
    f1: float


def token_scores(extracted: str, expected: str) -> TokenScores:
    """Compare two texts as multisets of words.

    An empty extraction of a non-empty text scores zero on all three; two empty texts agree.
    """
    got, want = Counter(tokens(extracted)), Counter(tokens(expected))
    if not got and not want:
        return TokenScores(1.0, 1.0, 1.0)
    overlap = sum((got & want).values())
    precision = overlap / sum(got.values()) if got else 0.0
    recall = overlap / sum(want.values()) if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if overlap else 0.0
    return TokenScores(precision, recall, f1)
