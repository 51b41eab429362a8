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
from typing import TYPE_CHECKING

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
from pipeline.nlp.taxonomy import load_themes
from pipeline.nlp.versions import model_versions
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
from pipeline.store.lock import batch_lock
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

if TYPE_CHECKING:
    from pipeline.nlp.annotate import Annotator

DATA_DIR = REPO_ROOT / "data"
DEFAULT_DB = DATA_DIR / "pipeline.db"
DEFAULT_WARC_DIR = DATA_DIR / "warc"
ANNOTATE_CHUNK = 64
"""Documents per annotation job: a good batch for spaCy, yet small enough that every worker
stays busy until the end."""
PARALLEL_MIN = 48
"""Fewer pages or documents than this are handled in this process: workers take seconds to
start (and to load the models), which a handful of pages does not repay."""
IN_FLIGHT_PER_WORKER = 3
"""Pages or chunks handed out per worker ahead of the writes: enough to keep the workers busy
while the main process writes, few enough to keep memory flat."""


class BatchStopped(Exception):
    """Raised between two pages or annotation chunks once a stop was requested."""


class BatchFailed(RuntimeError):
    """The batch could not go on (disk full, a worker process died, the database failed); the
    message says why. Everything stored before stays consistent and the next run resumes."""


_OPERATIONAL_ERRORS = (ArchiveError, BrokenProcessPool, sqlite3.OperationalError, OSError)


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
        # Seconds per stage of the last run (fetch, extract, ner, …), summed over processes.
        self.timings: Counter[str] = Counter()
        # CPU seconds of the extraction and annotation jobs ("extract", "annotate") and of the
        # annotation's parts (ner, themes, link, load), wherever they ran: with the process
        # totals this separates the work from moving it between processes.
        self.job_cpu: Counter[str] = Counter()
        self._pool: WorkerPool | None = None
        # Annotation chunks sent to the workers while the crawl goes on (see _annotate_alongside).
        self._annotating: deque[tuple[list[PendingDocument], Future[AnnotateOutcome]]] = deque()
        self._annotated_upto = 0  # the highest document id sent for annotation during the crawl
        self._unsent = 0  # documents stored since then that still wait for annotation
        self._versions: tuple[str, str] | None = None

    @property
    def annotator(self) -> Annotator:
        if self._annotator is None:
            # imported here: a batch whose annotation all runs in worker processes never
            # needs spaCy or scikit-learn in this one
            from pipeline.nlp.annotate import Annotator

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
        self.job_cpu = Counter()
        self._annotating.clear()
        self._annotated_upto = self._unsent = 0
        self._versions = None
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
        """Discover, then fetch the due pages one by one while the pages fetched before are
        extracted; a stop ends the crawl once the pages at hand are stored."""
        self.progress.stage(f"discover {source.id}")
        known = crawler.counts.discovered
        with self._timed("discover"):
            crawler.discover(source)
        self.progress.advance(crawler.counts.discovered - known)  # new pages found
        self.progress.done()
        pages = due_pages(db, source)
        self.progress.stage(f"crawl {source.id}", len(pages))
        in_flight: deque[_Fetched] = deque()
        extracted = 0
        for page in pages:
            if self.stop.is_set():
                break
            with self._timed("fetch"):
                result, fetch_id = crawler.fetch(source, page)
            extraction = None
            if needs_extraction(page, result):
                # Workers only once this many pages changed: a re-crawl answering 304 or
                # finding a few changes never pays for starting them.
                extracted += 1
                pool = self._pool_for(extracted)
                job = ExtractJob(
                    result.text or "", result.final_url, source.selectors, _moment(result)
                )
                in_pool = isinstance(pool, WorkerPool)
                extraction = pool.submit(extract_in_worker if in_pool else _extract_here, job)
            in_flight.append(_Fetched(page, result, fetch_id, extraction))
            self._record_fetched(db, crawler, source, in_flight, keep=self._ahead())
            self._annotate_alongside(db)
        self._record_fetched(db, crawler, source, in_flight, keep=0)
        if self.stop.is_set():
            raise BatchStopped
        self.progress.done()

    def _record_fetched(
        self,
        db: sqlite_utils.Database,
        crawler: SourceCrawler,
        source: Source,
        in_flight: deque[_Fetched],
        *,
        keep: int,
    ) -> None:
        """Store the documents of the oldest fetched pages and only then mark those pages done,
        together in one transaction; wait for extractions only while more than ``keep`` pages
        are in flight."""
        ready: list[tuple[_Fetched, ExtractOutcome | None]] = []
        while in_flight and (len(in_flight) > keep or in_flight[0].ready):
            item = in_flight.popleft()
            with self._timed("wait"):
                outcome = item.extraction.result() if item.extraction else None
            ready.append((item, outcome))
        if not ready:
            return
        with self._timed("store"), transaction(db):
            for item, outcome in ready:
                if outcome is not None:
                    self.timings["extract"] += outcome.seconds
                    self.job_cpu["extract"] += outcome.cpu_seconds
                    self._store(db, source, item.page, outcome.result, item.fetch_id)
                crawler.record_document(source, item.page, item.result)
        self.progress.advance(len(ready))

    def _store(
        self,
        db: sqlite_utils.Database,
        source: Source,
        page: Page,
        extracted: Extracted | Listing | ExtractionError,
        fid: int,
    ) -> None:
        """Store one extracted page as a document (a per-page error never stops the batch).

        A listing page (an archive or front page of teasers that matched the document pattern)
        is not stored: its links go to the frontier and are fetched as documents when due.
        """
        if isinstance(extracted, ExtractionError):
            set_fetch_error(db, fid, f"extraction failed: {extracted}")
            self.counts["failed"] += 1
            self.progress.log(f"{source.id}: {page.url}: extraction failed: {extracted}")
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
        if saved.outcome in ("new", "changed"):
            self._unsent += 1

    def _annotate_alongside(self, db: sqlite_utils.Database) -> None:
        """Send stored documents to the workers for annotation while the crawl goes on.

        During a crawl the main process fetches and the workers mostly wait for pages to
        extract; annotation, most of a first run's CPU time, would otherwise start only after
        the last page. So whenever a full chunk of new or changed documents is stored, it is
        sent to the pool (at most one chunk per worker at a time) and saved when done. Only
        with worker processes: inline, it would just delay the next fetch. What is left when
        the crawl ends is annotated by :meth:`_annotate`, as is anything a stop interrupts.
        """
        if not isinstance(self._pool, WorkerPool) or self._annotator is not None:
            return
        ner, themes = self._model_versions()
        self._save_annotated(db, self._annotating, self.workers, ner, themes, advance=False)
        while len(self._annotating) < self.workers and self._unsent >= ANNOTATE_CHUNK:
            chunk = pending_annotation(
                db, ner, themes, ANNOTATE_CHUNK, after_id=self._annotated_upto
            )
            if len(chunk) < ANNOTATE_CHUNK:  # changed documents keep their older, lower ids
                self._unsent = len(chunk)
                return
            texts, languages = [d.text for d in chunk], [d.language for d in chunk]
            future = self._pool.submit(annotate_in_worker, texts, languages)
            self._annotating.append((chunk, future))
            self._annotated_upto = chunk[-1].id
            self._unsent -= len(chunk)

    def _annotate(self, db: sqlite_utils.Database) -> None:
        """Annotate what is pending, a chunk at a time, writing each chunk in one transaction."""
        ner, themes = self._model_versions()
        total = count_pending_annotation(db, ner, themes)
        self.progress.stage("annotate", total)
        saved = self.counts["annotated"]
        self._save_annotated(db, self._annotating, 0, ner, themes)  # sent during the crawl
        left = total - (self.counts["annotated"] - saved)
        if left:
            annotate = self._annotation_jobs(left)
            ahead = self._ahead()
            in_flight: deque[tuple[list[PendingDocument], Future[AnnotateOutcome]]] = deque()
            for chunk in _pending_chunks(db, ner, themes):
                if self.stop.is_set():
                    break
                texts, languages = [d.text for d in chunk], [d.language for d in chunk]
                in_flight.append((chunk, annotate(texts, languages)))
                self._save_annotated(db, in_flight, ahead, ner, themes)
            self._save_annotated(db, in_flight, 0, ner, themes)
            if self.stop.is_set():
                raise BatchStopped
        with self._timed("entities"):
            refresh_entity_counts(db)
        self.progress.done()

    def _save_annotated(
        self,
        db: sqlite_utils.Database,
        in_flight: deque[tuple[list[PendingDocument], Future[AnnotateOutcome]]],
        keep: int,
        ner: str,
        themes: str,
        *,
        advance: bool = True,
    ) -> None:
        """Write the oldest annotated chunks, waiting only while more than ``keep`` are out;
        ``advance`` moves the progress bar (not during the crawl, whose bar counts pages)."""
        while in_flight and (len(in_flight) > keep or in_flight[0][1].done()):
            chunk, future = in_flight.popleft()
            with self._timed("wait"):
                outcome = future.result()
            self.timings.update(outcome.seconds)
            self.job_cpu["annotate"] += outcome.cpu_seconds
            self.job_cpu.update(outcome.part_cpu_seconds)
            with self._timed("save"), transaction(db):
                for document, annotation in zip(chunk, outcome.annotations, strict=True):
                    save_annotations(
                        db,
                        document,
                        annotation.mentions or annotation.entities,
                        [(t.theme, t.score, t.terms) for t in annotation.themes],
                        ner_model=ner,
                        themes_model=themes,
                    )
            self.counts["annotated"] += len(chunk)
            if advance:
                self.progress.advance(len(chunk))

    # ----------------------------------------------------------------------------- processes

    def _model_versions(self) -> tuple[str, str]:
        """The versions of the models in use, without loading them when workers will; read
        once per run (models are not replaced under a running batch)."""
        if self._annotator is not None:
            return self._annotator.ner_version, self._annotator.themes_version
        if self._versions is None:
            self._versions = model_versions()
        return self._versions

    def _annotation_jobs(
        self, total: int
    ) -> Callable[[list[str], list[str | None]], Future[AnnotateOutcome]]:
        """Where chunks are annotated: by the annotator given to the batch (or loaded here) in
        this process, or by the workers, each with its own models."""
        pool = self._pool_for(total) if self._annotator is None else _INLINE
        if isinstance(pool, WorkerPool):
            return lambda texts, languages: pool.submit(annotate_in_worker, texts, languages)
        annotator = self.annotator
        return lambda texts, languages: _INLINE.submit(run_annotation, annotator, texts, languages)

    def _pool_for(self, jobs: int) -> Pool:
        """The worker processes once there are ``jobs`` to do, enough to repay their start."""
        if self._pool is None and self.workers > 1 and jobs >= PARALLEL_MIN:
            self._pool = WorkerPool(self.workers)
        return self._pool or _INLINE

    def _ahead(self) -> int:
        """Jobs that may be out before the oldest result is waited for."""
        return IN_FLIGHT_PER_WORKER * self.workers if self._pool is not None else 0

    def _close_pool(self, *, cancel: bool) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel=cancel)
            self._pool = None

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - started


_INLINE = InlinePool()


@dataclass
class _Fetched:
    """A fetched document page whose outcome is recorded once its extraction is stored
    (``extraction`` is None when there is nothing to extract: 304, same bytes, failure)."""

    page: Page
    result: FetchResult
    fetch_id: int
    extraction: Future[ExtractOutcome] | None

    @property
    def ready(self) -> bool:
        return self.extraction is None or self.extraction.done()


def _extract_here(job: ExtractJob) -> ExtractOutcome:
    """Extraction in this process, through this module's ``extract_page``."""
    return run_extraction(job, extract_page)


def _moment(result: FetchResult) -> datetime:
    return datetime.fromisoformat(result.fetched_at.replace("Z", "+00:00"))


def _pending_chunks(
    db: sqlite_utils.Database, ner: str, themes: str
) -> Iterator[list[PendingDocument]]:
    """Pending documents a chunk at a time, so memory does not grow with the backlog."""
    after = 0
    while chunk := pending_annotation(db, ner, themes, ANNOTATE_CHUNK, after_id=after):
        yield chunk
        after = chunk[-1].id


def _describe(exc: BaseException) -> str:
    """A sentence for the operational errors that end a batch."""
    if isinstance(exc, BrokenProcessPool):
        return "a worker process died (out of memory, or killed)"
    if isinstance(exc, sqlite3.OperationalError):
        return f"the database failed ({exc})"
    return str(exc)


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
