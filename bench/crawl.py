"""Crawl benchmark: the regeringen corpus as a local website, crawled four times.

1. **First crawl** of the whole site (feed, sitemap index with one sitemap per year, five
   listing pages), with extraction and annotation by the real models.
2. **Again at once**, nothing changed: only feeds, sitemaps and listings are asked, conditionally.
3. **After the re-crawl interval**, nothing changed: every page is asked again with its ETag and
   answers 304 (the interval is made to pass by moving each page's next fetch into the past).
4. **After changing ``--change`` pages and adding ``--add``**: the sitemap's ``lastmod`` and the
   feed point at exactly those pages, and only they are fetched, extracted and annotated.

Run with ``make bench`` (or ``python -m bench.crawl``); the numbers are printed as a table and
written to ``bench/results/crawl.json``. Needs ``../shared/data/press/regeringen`` and the models.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from pipeline.batch import Batch
from pipeline.config import REPO_ROOT, load_sources
from pipeline.nlp.annotate import Annotator
from pipeline.progress import Progress
from pipeline.sitegen import CORPUS_DIR, PressSite, PressSiteServer, load_articles

RESULTS = REPO_ROOT / "bench" / "results" / "crawl.json"


class StageClock(Progress):
    """Progress that adds up the seconds spent per kind of stage (discover, crawl, …) and
    counts the per-page messages instead of printing them: 869 of the 8,529 files of the corpus
    have a title and no text, and their "no main text" lines would bury the progress."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False):
        super().__init__(stream, quiet=quiet)
        self.seconds: Counter[str] = Counter()
        self.messages = 0

    def log(self, message: str) -> None:
        self.messages += 1

    def done(self) -> None:
        self.seconds[self._label.split()[0]] += time.monotonic() - self._started
        super().done()


@dataclass
class Measurement:
    """One crawl: what the run counted, what the server answered, and where the time went."""

    name: str
    seconds: float
    stages: dict[str, float]
    counts: dict[str, int]
    requests: int
    statuses: dict[int, int]
    documents: int
    pages_per_second: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


def crawl(
    name: str, batch: Batch, server: PressSiteServer, clock: StageClock, db_path: Path
) -> Measurement:
    server.reset()
    clock.seconds.clear()
    clock.messages = 0
    started = time.monotonic()
    summary = batch.run()
    seconds = time.monotonic() - started
    statuses = server.statuses()
    if summary.status != "completed":
        raise RuntimeError(f"{name}: the run ended {summary.status}")
    fetch_seconds = clock.seconds["discover"] + clock.seconds["crawl"]
    fetched = summary.counts["fetched"]
    return Measurement(
        name=name,
        seconds=round(seconds, 2),
        stages={k: round(v, 2) for k, v in clock.seconds.items()},
        counts={k: v for k, v in summary.counts.items() if v},
        requests=sum(statuses.values()),
        statuses=dict(sorted(statuses.items())),
        documents=summary.documents,
        pages_per_second=round(fetched / fetch_seconds, 1) if fetched and fetch_seconds else None,
        extra={"page_messages": clock.messages},
    )


def let_the_interval_pass(db_path: Path) -> None:
    """Make every page due, as if the source's re-crawl interval had gone by."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE pages SET next_fetch = '2000-01-01T00:00:00Z'")


def run(limit: int | None, change: int, add: int, work: Path) -> list[Measurement]:
    articles = load_articles(CORPUS_DIR)
    site = PressSite(articles=articles, limit=limit, reserve=add)
    clock = StageClock()
    annotator = Annotator()
    db_path = work / "pipeline.db"
    with PressSiteServer(site) as server:
        sources = work / "sources.yaml"
        sources.write_text(server.sources_yaml(recrawl="6h"), encoding="utf-8")
        batch = Batch(
            load_sources(sources),
            db_path=db_path,
            warc_dir=work / "warc",
            annotator=annotator,
            progress=clock,
        )
        results = [crawl("first crawl", batch, server, clock, db_path)]
        results.append(crawl("again at once, nothing changed", batch, server, clock, db_path))
        let_the_interval_pass(db_path)
        results.append(crawl("after the interval, nothing changed", batch, server, clock, db_path))
        changed = site.change(change)
        added = site.add(add)
        last = crawl(f"after {change} changed and {add} added", batch, server, clock, db_path)
        expected = {f"{server.origin}{a.path}".rstrip("/") for a in changed + added}
        last.extra |= {
            "expected_reprocessed": len(expected),
            "reprocessed_are_exactly_those": reprocessed(db_path) == expected,
        }
        results.append(last)
    return results


def reprocessed(db_path: Path) -> set[str]:
    """URLs of the documents whose text was stored by the last run."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT d.url FROM documents d JOIN document_versions v ON v.document_id = d.id"
            " JOIN fetches f ON f.id = v.fetch_id WHERE f.run_id = (SELECT MAX(id) FROM runs)"
        )
        return {row[0] for row in rows}


def table(results: list[Measurement]) -> str:
    lines = [
        "| crawl | time (s) | requests | 200 | 304 | fetched | new | changed | annotated "
        "| pages/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in results:
        c = m.counts
        lines.append(
            f"| {m.name} | {m.seconds:.1f} | {m.requests} | {m.statuses.get(200, 0)} "
            f"| {m.statuses.get(304, 0)} | {c.get('fetched', 0)} | {c.get('new', 0)} "
            f"| {c.get('changed', 0)} | {c.get('annotated', 0)} | {m.pages_per_second or '–'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the newest N articles")
    parser.add_argument("--change", type=int, default=50, help="pages changed before crawl 4")
    parser.add_argument("--add", type=int, default=20, help="pages added before crawl 4")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not CORPUS_DIR.is_dir():
        print(f"crawl benchmark skipped: {CORPUS_DIR} is not there", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-crawl-") as work:
        results = run(args.limit, args.change, args.add, Path(work))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps([asdict(m) for m in results], ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )
    print(table(results))
    for m in results:
        print(f"{m.name}: stages {m.stages}; counts {m.counts}; {m.extra or ''}")
    print(f"written to {args.output}")
    return 0 if results[-1].extra.get("reprocessed_are_exactly_those") else 1


if __name__ == "__main__":
    sys.exit(main())
