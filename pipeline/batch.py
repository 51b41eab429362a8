"""One ingestion batch: crawl every source, extract new pages, annotate, store, report.

Stages run in order and each is restartable on its own: the crawl leaves pages due until their
document is stored, and annotation picks up whatever documents are not yet annotated with the
current models, so a batch killed anywhere is finished by the next one.

Extraction and annotation run in worker processes (:mod:`pipeline.workers`) once there is enough
work to repay starting them: the main process fetches the next pages and writes what the
workers return, a few pages or chunks at a time in one transaction each. Results are written in
the order the pages were fetched, so the outcome is the same as in a single process.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import sqlite_utils

from pipeline.config import REPO_ROOT, Source, SourcesConfig
from pipeline.crawl.archive import ArchiveError, WarcArchive
from pipeline.crawl.discover import Link
from pipeline.crawl.fetch import Fetcher, FetchResult
from pipeline.crawl.frontier import (
    CrawlCounts,
    Page,
    SourceCrawler,
    due_pages,
    enqueue,
    needs_extraction,
)
from pipeline.extract import Extracted, ExtractionError, Listing, extract_page
from pipeline.nlp.annotate import Annotator, model_versions
from pipeline.nlp.themes import load_themes
from pipeline.progress import Progress
from pipeline.store.db import (
    RUN_COUNTERS,
    PendingDocument,
    count_pending_annotation,
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
    transaction,
)
from pipeline.workers import (
    AnnotateOutcome,
    ExtractJob,
    ExtractOutcome,
    InlinePool,
    Pool,
    WorkerPool,
    annotate_in_worker,
    default_workers,
    extract_in_worker,
    run_annotation,
    run_extraction,
)

DATA_DIR = REPO_ROOT / "data"
DEFAULT_DB = DATA_DIR / "pipeline.db"
DEFAULT_WARC_DIR = DATA_DIR / "warc"
ANNOTATE_CHUNK = 32
"""Documents per annotation job: small, so that every worker stays busy until the end."""
PARALLEL_MIN = 48
"""Fewer pages or documents than this are handled in this process: workers take seconds to
start (and to load the models), which a handful of pages does not repay."""
IN_FLIGHT_PER_WORKER = 3
"""Pages or chunks handed out per worker ahead of the writes: enough to keep the workers busy
while the main process writes, few enough to keep memory flat."""


class BatchLockedError(RuntimeError):
    """Another batch holds the lock on this database."""


class BatchStopped(Exception):
    """Raised between two pages or annotation chunks once a stop was requested."""


class BatchFailed(RuntimeError):
    """The batch could not go on (disk full, a worker process died, the database failed); the
    message says why. Everything stored before stays consistent and the next run resumes."""


_OPERATIONAL_ERRORS = (ArchiveError, BrokenProcessPool, sqlite3.OperationalError, OSError)


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
    status: str = "completed"
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
        stop: threading.Event | None = None,
        workers: int | None = None,
    ):
        self.config = config
        self.db_path = Path(db_path)
        self.warc_dir = Path(warc_dir)
        self._annotator = annotator
        self.transport = transport
        self.progress = progress or Progress(quiet=True)
        self.counts: Counter[str] = Counter()
        # Set from a signal handler: the batch ends after the page or annotation chunk at hand,
        # so a service manager's SIGTERM never waits for a whole crawl.
        self.stop = stop or threading.Event()
        # Processes for extraction and annotation; 1 keeps everything in this process.
        self.workers = default_workers() if workers is None else max(1, workers)
        # Seconds per stage of the last run, summed over processes (see docs/ARCHITECTURE.md).
        self.timings: Counter[str] = Counter()
        self._pool: WorkerPool | None = None

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
        self.counts = Counter()  # a Batch object may run more than once (the scheduler)
        self.timings = Counter()
        run_id = start_run(db, [s.id for s in sources], os.getpid())
        crawl_counts = CrawlCounts()
        status, message = "failed", None
        try:
            self._crawl(db, run_id, sources, crawl_counts)
            self._annotate(db)
            status = "completed"
        except BatchStopped:
            status, message = "stopped", "stopped on request; the next run continues from here"
        except _OPERATIONAL_ERRORS as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise BatchFailed(
                f"the batch stopped: {_describe(exc)}. Everything stored before is consistent; "
                "the next run continues from there."
            ) from exc
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._close_pool(cancel=status != "completed")
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
                self._crawl_source(db, crawler, source)

    def _crawl_source(
        self, db: sqlite_utils.Database, crawler: SourceCrawler, source: Source
    ) -> None:
        """Discover, then fetch the due pages one by one, checking for a stop in between."""
        self.progress.stage(f"discover {source.id}")
        known = crawler.counts.discovered
        crawler.discover(source)
        self.progress.advance(crawler.counts.discovered - known)  # new pages found
        self.progress.done()
        pages = due_pages(db, source)
        self.progress.stage(f"crawl {source.id}", len(pages))
        for page in pages:
            if self.stop.is_set():
                raise BatchStopped
            crawler.fetch_document(source, page, lambda s, p, r, f: self._store(db, s, p, r, f))
            self.progress.advance()
        self.progress.done()

    def _store(
        self, db: sqlite_utils.Database, source: Source, page: Page, result: FetchResult, fid: int
    ) -> None:
        """Extract one fetched page and store it as a document (a per-page error never stops).

        A listing page (an archive or front page of teasers that matched the document pattern)
        is not stored: its links go to the frontier and are fetched as documents when due.
        """
        fetched_at = datetime.fromisoformat(result.fetched_at.replace("Z", "+00:00"))
        try:
            extracted = extract_page(
                result.text or "", result.final_url, source.selectors, fetched_at=fetched_at
            )
        except ExtractionError as exc:
            set_fetch_error(db, fid, f"extraction failed: {exc}")
            self.counts["failed"] += 1
            self.progress.log(f"{source.id}: {page.url}: extraction failed: {exc}")
            return
        if isinstance(extracted, Listing):
            self.counts["discovered"] += enqueue(db, source, [Link(u) for u in extracted.links])
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
            if self.stop.is_set():
                raise BatchStopped
            chunk = pending[start : start + ANNOTATE_CHUNK]
            results = annotator.annotate([d.text for d in chunk], [d.language for d in chunk])
            for document, annotation in zip(chunk, results, strict=True):
                save_annotations(
                    db,
                    document,
                    annotation.mentions or annotation.entities,
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
        status=str(run["status"]),
        entities={label: int(n) for label, n in entity_rows},
        themes={theme: int(n) for theme, n in theme_rows},
    )
