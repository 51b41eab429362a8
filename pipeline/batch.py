"""One ingestion batch: crawl every source, extract new pages, annotate, store, report.

Stages run in order and each is restartable on its own: the crawl leaves pages due until their
document is stored, and annotation picks up whatever documents are not yet annotated with the
current models, so a batch killed anywhere is finished by the next one.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import sqlite_utils

from pipeline.config import REPO_ROOT, Source, SourcesConfig
from pipeline.crawl.archive import WarcArchive
from pipeline.crawl.fetch import Fetcher, FetchResult
from pipeline.crawl.frontier import CrawlCounts, Page, SourceCrawler
from pipeline.extract import ExtractionError, extract
from pipeline.nlp.annotate import Annotator
from pipeline.nlp.themes import load_themes
from pipeline.progress import Progress
from pipeline.store.db import (
    RUN_COUNTERS,
    finish_run,
    open_db,
    pending_annotation,
    refresh_entity_counts,
    save_annotations,
    save_document,
    set_fetch_error,
    start_run,
    sync_sources,
    sync_themes,
)

DATA_DIR = REPO_ROOT / "data"
DEFAULT_DB = DATA_DIR / "pipeline.db"
DEFAULT_WARC_DIR = DATA_DIR / "warc"
ANNOTATE_CHUNK = 128


class BatchLockedError(RuntimeError):
    """Another batch holds the lock on this database."""


@contextmanager
def batch_lock(db_path: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock next to the database; released even if the process dies.

    ``flock`` locks vanish with the process, so a batch killed with SIGKILL never leaves a stale
    lock behind.
    """
    lock_path = Path(f"{db_path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BatchLockedError(
                f"another batch is already running on {db_path} (pid {holder}); "
                "wait for it to finish or stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class RunSummary:
    """What a batch did and what the database now holds."""

    run_id: int
    counts: dict[str, int]
    duration: float
    documents: int
    entities: dict[str, int] = field(default_factory=dict)
    themes: dict[str, int] = field(default_factory=dict)


class Batch:
    """Wires the stages together for one run over a set of sources."""

    def __init__(
        self,
        config: SourcesConfig,
        *,
        db_path: Path = DEFAULT_DB,
        warc_dir: Path = DEFAULT_WARC_DIR,
        annotator: Annotator | None = None,
        transport: httpx.BaseTransport | None = None,
        progress: Progress | None = None,
    ):
        self.config = config
        self.db_path = Path(db_path)
        self.warc_dir = Path(warc_dir)
        self._annotator = annotator
        self.transport = transport
        self.progress = progress or Progress(quiet=True)
        self.counts: Counter[str] = Counter()

    @property
    def annotator(self) -> Annotator:
        if self._annotator is None:
            self._annotator = Annotator()
        return self._annotator

    def run(self, source_ids: Sequence[str] | None = None) -> RunSummary:
        """Run the batch for the given sources (all when None) under the database lock."""
        sources = [self.config.get(s) for s in source_ids] if source_ids else self.config.sources
        with batch_lock(self.db_path):
            db = open_db(self.db_path)
            try:
                return self._run(db, list(sources))
            finally:
                db.close()

    def _run(self, db: sqlite_utils.Database, sources: list[Source]) -> RunSummary:
        sync_sources(db, self.config.sources)
        sync_themes(db, load_themes())
        started = time.monotonic()
        run_id = start_run(db, [s.id for s in sources], os.getpid())
        crawl_counts = CrawlCounts()
        status, message = "failed", None
        try:
            self._crawl(db, run_id, sources, crawl_counts)
            self._annotate(db)
            status = "completed"
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.counts.update({k: v for k, v in vars(crawl_counts).items() if v})
            finish_run(
                db,
                run_id,
                dict(self.counts),
                status=status,
                duration=time.monotonic() - started,
                message=message,
            )
        return summarize(db, run_id)

    def _crawl(
        self, db: sqlite_utils.Database, run_id: int, sources: list[Source], counts: CrawlCounts
    ) -> None:
        with (
            Fetcher(self.config.settings, transport=self.transport) as fetcher,
            WarcArchive(self.warc_dir) as archive,
        ):
            crawler = SourceCrawler(db, run_id, fetcher, archive, counts, log=self.progress.log)
            for source in sources:
                self.progress.stage(f"crawl {source.id}")
                crawler.crawl(source, lambda s, p, r, f: self._store(db, s, p, r, f))
                self.progress.done()

    def _store(
        self, db: sqlite_utils.Database, source: Source, page: Page, result: FetchResult, fid: int
    ) -> None:
        """Extract one fetched page and store it as a document (a per-page error never stops)."""
        self.progress.advance()
        fetched_at = datetime.fromisoformat(result.fetched_at.replace("Z", "+00:00"))
        try:
            extracted = extract(
                result.text or "", result.final_url, source.selectors, fetched_at=fetched_at
            )
        except ExtractionError as exc:
            set_fetch_error(db, fid, f"extraction failed: {exc}")
            self.counts["failed"] += 1
            self.progress.log(f"{source.id}: {page.url}: extraction failed: {exc}")
            return
        saved = save_document(
            db,
            url=page.url,
            source_id=source.id,
            kind=source.kind,
            extracted=extracted,
            fetch_id=fid,
        )
        self.counts[saved.outcome] += 1

    def _annotate(self, db: sqlite_utils.Database) -> None:
        annotator = self.annotator
        ner, themes = annotator.ner_version, annotator.themes_version
        pending = pending_annotation(db, ner, themes)
        self.progress.stage("annotate", len(pending))
        for start in range(0, len(pending), ANNOTATE_CHUNK):
            chunk = pending[start : start + ANNOTATE_CHUNK]
            results = annotator.annotate([d.text for d in chunk], [d.language for d in chunk])
            for document, annotation in zip(chunk, results, strict=True):
                save_annotations(
                    db,
                    document,
                    annotation.entities,
                    [(t.theme, t.score, t.terms) for t in annotation.themes],
                    ner_model=ner,
                    themes_model=themes,
                )
            self.counts["annotated"] += len(chunk)
            self.progress.advance(len(chunk))
        refresh_entity_counts(db)
        self.progress.done()


def summarize(db: sqlite_utils.Database, run_id: int) -> RunSummary:
    """Read a run's counters and the database totals shown at the end of a batch."""
    run = db["runs"].get(run_id)
    entity_rows = db.conn.execute(
        "SELECT label, COUNT(*) FROM entities WHERE mention_count > 0 GROUP BY label ORDER BY label"
    ).fetchall()
    theme_rows = db.conn.execute(
        "SELECT theme, COUNT(*) FROM document_themes GROUP BY theme ORDER BY COUNT(*) DESC, theme"
    ).fetchall()
    return RunSummary(
        run_id=run_id,
        counts={key: int(run[key]) for key in RUN_COUNTERS},
        duration=float(run["duration_seconds"] or 0.0),
        documents=db["documents"].count,
        entities={label: int(n) for label, n in entity_rows},
        themes={theme: int(n) for theme, n in theme_rows},
    )
