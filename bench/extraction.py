"""Extraction benchmark: the project's extractor and plain trafilatura on the hand-checked set.

The set is ``tests/fixtures/extraction_set/``: saved pages shaped like the four source families
(Mynewsdesk-style press rooms, WordPress-style blogs, Sitevision-style municipal news and
regeringen.se-style government press releases), each with the title, date, author and main
text a reader sees (see the README in that folder). For every page both extractors are run:

* ``pipeline``: :func:`pipeline.extract.extract_page`, as the batch runs it (no source
  selectors, so the generic rules are what is measured);
* ``trafilatura``: ``trafilatura.extract(html, url=url)`` with its default settings for the
  text, and ``trafilatura.extract_metadata`` for title, date and author.

Scores, per family and overall:

* main text: bag-of-words precision, recall and F1 per page (:mod:`pipeline.extract.evaluation`),
  averaged over the pages;
* title and author: exact match after white space is folded (no author expected and none found
  counts as right);
* date: the publication day is right, and a page that only gives a month is only right without
  an invented day ("2017-02", not "2017-02-01"); ``date+`` (pipeline only) also requires the
  precision (minute, day, month) and the kind (published, updated) to be right;
* time: median CPU milliseconds per page (``time.process_time``, so that other processes on a
  shared machine count less than they would in wall-clock time), best of three runs of each
  page.

The last two rows are all pages, and the held-out pages alone: those were written after the
extraction bugs the other pages revealed had been fixed, so they show how the extractor does
on templates it was not corrected for.

Run with ``make bench`` or ``python -m bench --only extraction``; the table is printed and
written to ``bench/results/extraction.md``, the numbers to ``bench/results/extraction.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import trafilatura

from pipeline.config import REPO_ROOT
from pipeline.extract import Extracted, ExtractionError, extract_page
from pipeline.extract.evaluation import ExpectedPage, load_set, token_scores

SET_DIR = REPO_ROOT / "tests" / "fixtures" / "extraction_set"
RESULTS = REPO_ROOT / "bench" / "results"
FAMILIES = {
    "pressrum": "press rooms",
    "blogg": "blogs",
    "kommun": "municipal news",
    "regeringen": "government",
}
RUNS = 3


@dataclass(frozen=True)
class Output:
    """What one extractor gave for one page."""

    text: str
    title: str | None
    date: str | None
    precision: str | None
    kind: str | None
    author: str | None
    seconds: float


@dataclass(frozen=True)
class PageScore:
    """One extractor on one page."""

    page: str
    family: str
    precision: float
    recall: float
    f1: float
    title: bool
    date: bool
    date_full: bool | None
    author: bool
    seconds: float


def run_pipeline(page: ExpectedPage) -> Output:
    def once() -> Extracted | None:
        try:
            result = extract_page(page.html, page.url, fetched_at=page.fetched_at)
        except ExtractionError:
            return None
        return result if isinstance(result, Extracted) else None

    result, seconds = _timed(once)
    if result is None:
        return Output("", None, None, None, None, None, seconds)
    return Output(
        result.text,
        result.title,
        result.published,
        result.date_precision,
        result.date_kind,
        result.author,
        seconds,
    )


def run_trafilatura(page: ExpectedPage) -> Output:
    def once() -> tuple[str, object]:
        text = trafilatura.extract(page.html, url=page.url) or ""
        return text, trafilatura.extract_metadata(page.html, default_url=page.url)

    (text, metadata), seconds = _timed(once)
    return Output(
        text,
        getattr(metadata, "title", None),
        getattr(metadata, "date", None),
        None,
        None,
        getattr(metadata, "author", None),
        seconds,
    )


def _timed(function: Callable[[], object]) -> tuple[object, float]:
    best = float("inf")
    result = None
    for _ in range(RUNS):
        started = time.process_time()
        result = function()
        best = min(best, time.process_time() - started)
    return result, best


def score(page: ExpectedPage, output: Output, *, full_dates: bool) -> PageScore:
    text = token_scores(output.text, page.text)
    full = None
    if full_dates:
        full = (output.date, output.precision, output.kind) == (
            page.published,
            page.date_precision,
            page.date_kind,
        )
    return PageScore(
        page=page.name,
        family=page.family,
        precision=text.precision,
        recall=text.recall,
        f1=text.f1,
        title=_same(output.title, page.title),
        date=_same_day(output.date, page),
        date_full=full,
        author=_same(output.author, page.author),
        seconds=output.seconds,
    )


def _same(found: str | None, expected: str | None) -> bool:
    fold = lambda value: re.sub(r"\s+", " ", value or "").strip()  # noqa: E731
    return fold(found) == fold(expected)


def _same_day(found: str | None, page: ExpectedPage) -> bool:
    """The day is right; for a month-only page, the month is right and no day was added."""
    if page.published is None:
        return found is None
    if found is None:
        return False
    if page.date_precision == "month":
        return found == page.published
    return found[:10] == page.published[:10]


@dataclass(frozen=True)
class Row:
    """Averages of one extractor over a group of pages."""

    group: str
    extractor: str
    pages: int
    precision: float
    recall: float
    f1: float
    title: float
    date: float
    date_full: float | None
    author: float
    median_ms: float


def summarize(group: str, extractor: str, scores: list[PageScore]) -> Row:
    mean = lambda values: round(statistics.fmean(values), 3)  # noqa: E731
    full = [s.date_full for s in scores if s.date_full is not None]
    return Row(
        group=group,
        extractor=extractor,
        pages=len(scores),
        precision=mean(s.precision for s in scores),
        recall=mean(s.recall for s in scores),
        f1=mean(s.f1 for s in scores),
        title=mean(s.title for s in scores),
        date=mean(s.date for s in scores),
        date_full=mean(full) if full else None,
        author=mean(s.author for s in scores),
        median_ms=round(1000 * statistics.median(s.seconds for s in scores), 1),
    )


def evaluate(set_dir: Path = SET_DIR) -> tuple[list[Row], dict[str, list[PageScore]]]:
    """Run both extractors on every page; rows per family and overall, and per-page scores."""
    pages = load_set(set_dir)
    per_page = {
        "pipeline": [score(p, run_pipeline(p), full_dates=True) for p in pages],
        "trafilatura": [score(p, run_trafilatura(p), full_dates=False) for p in pages],
    }
    splits = {p.name: p.split for p in pages}
    groups: list[tuple[str, Callable[[PageScore], bool]]] = [
        (label, lambda s, family=family: s.family == family) for family, label in FAMILIES.items()
    ]
    groups.append(("all pages", lambda s: True))
    groups.append(("held-out pages", lambda s: splits[s.page] == "holdout"))
    rows = []
    for label, chosen in groups:
        for extractor, scores in per_page.items():
            selected = [s for s in scores if chosen(s)]
            if selected:
                rows.append(summarize(label, extractor, selected))
    return rows, per_page


def markdown(rows: list[Row]) -> str:
    header = (
        "| pages | extractor | n | precision | recall | F1 | title | date | date+ | author "
        "| median CPU ms |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for row in rows:
        full = "–" if row.date_full is None else f"{row.date_full:.2f}"
        group = f"**{row.group}**" if row.group in ("all pages", "held-out pages") else row.group
        lines.append(
            f"| {group} | {row.extractor} | {row.pages} | {row.precision:.3f} | "
            f"{row.recall:.3f} | {row.f1:.3f} | {row.title:.2f} | {row.date:.2f} | {full} | "
            f"{row.author:.2f} | {row.median_ms:.1f} |"
        )
    return header + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=SET_DIR, help="evaluation set folder")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    rows, per_page = evaluate(args.set)
    table = markdown(rows)
    print(table)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "extraction.md").write_text(table, encoding="utf-8")
    payload = {
        "set": str(
            args.set.relative_to(REPO_ROOT) if args.set.is_relative_to(REPO_ROOT) else args.set
        ),
        "trafilatura": trafilatura.__version__,
        "rows": [asdict(row) for row in rows],
        "pages": {name: [asdict(s) for s in scores] for name, scores in per_page.items()},
    }
    (args.output / "extraction.json").write_text(
        json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
