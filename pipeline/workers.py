"""Worker processes for the two CPU-heavy stages of a batch: extraction and annotation.

Nearly all of a batch's CPU time goes to extracting fetched pages (lxml, trafilatura) and to
annotating texts (spaCy NER, the theme classifier, entity linking). Both are pure functions of
their input, so they run in a pool of worker processes while the main process fetches,
archives and does every SQLite write: one writer, short transactions, no lock contention.

Workers are started with ``spawn``. A forked child would inherit the descriptor holding the
batch lock, so a worker outliving a killed batch would keep every later batch locked out. Each
worker ignores SIGINT (the batch decides how to stop) and exits by itself once the batch process
is gone, so a batch killed with SIGKILL leaves no worker behind holding the models' memory.

Small jobs do not pay for processes: :class:`InlinePool` has the same ``submit`` interface and
runs the job at once in the calling process.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.config import Selectors

if TYPE_CHECKING:
    from pipeline.extract import Extracted, ExtractionError, Listing
    from pipeline.nlp.annotate import Annotation, Annotator

MAX_WORKERS = 4
"""Upper bound of the default: each annotating worker holds the models (about 600 MB)."""

PARENT_POLL = 0.5
"""Seconds between a worker's checks that the batch process still exists."""


def default_workers() -> int:
    """One worker per CPU this process may use, at most :data:`MAX_WORKERS`."""
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


class Pool(Protocol):
    """What the batch needs from a pool: submit a job, and stop."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]: ...

    def shutdown(self, *, cancel: bool) -> None: ...


class InlinePool:
    """Runs each job in this process when it is submitted; its future is already done."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # delivered through the future, as a process pool would
            future.set_exception(exc)
        return future

    def shutdown(self, *, cancel: bool) -> None:
        """Nothing runs in the background."""


class WorkerPool:
    """``workers`` spawned processes; see the module docstring for how they end."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        return self._executor.submit(fn, *args)

    def shutdown(self, *, cancel: bool) -> None:
        """Wait for the workers to exit; ``cancel`` drops the jobs that have not started."""
        self._executor.shutdown(wait=True, cancel_futures=cancel)


def _start_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    """Exit as soon as the batch process is gone (a dead parent never sends more work)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    os._exit(1)


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class ExtractJob:
    """One fetched page to extract: everything :func:`pipeline.extract.extract_page` needs."""

    html: str
    url: str
    selectors: Selectors
    fetched_at: datetime


@dataclass(frozen=True)
class ExtractOutcome:
    """The document, the listing's links, or why nothing could be extracted; and the time
    (wall and CPU seconds, so that a benchmark can tell work from waiting for a core)."""

    result: Extracted | Listing | ExtractionError
    seconds: float
    cpu_seconds: float = 0.0


def run_extraction(job: ExtractJob, extract_page: Callable[..., Any]) -> ExtractOutcome:
    """Extract one page with ``extract_page``. Failures are returned as an
    :class:`ExtractionError`, not raised: a page without text is an ordinary outcome of a crawl,
    and an unattended batch must not end on one strange page."""
    from pipeline.extract import ExtractionError

    started, started_cpu = time.perf_counter(), time.process_time()
    try:
        result = extract_page(job.html, job.url, job.selectors, fetched_at=job.fetched_at)
    except ExtractionError as exc:
        result = exc
    except Exception as exc:  # a page that breaks a parser or a rule costs that page only
        result = ExtractionError(f"{type(exc).__name__}: {exc}")
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    return ExtractOutcome(result, wall, cpu)


def extract_in_worker(job: ExtractJob) -> ExtractOutcome:
    """The extraction job as a worker process runs it."""
    from pipeline.extract import extract_page

    return run_extraction(job, extract_page)


# --------------------------------------------------------------------------- annotation


@dataclass(frozen=True)
class AnnotateOutcome:
    """Annotations parallel to the texts sent, wall and CPU seconds per part (ner, themes,
    link, load), and the CPU seconds of the whole job."""

    annotations: list[Annotation]
    seconds: dict[str, float]
    cpu_seconds: float = 0.0
    part_cpu_seconds: dict[str, float] = dataclasses.field(default_factory=dict)


def run_annotation(
    annotator: Annotator, texts: Sequence[str], languages: Sequence[str | None]
) -> AnnotateOutcome:
    """Annotate one chunk and report how long each part of the annotator took for it."""
    wall: Counter[str] | None = getattr(annotator, "timings", None)
    cpu: Counter[str] | None = getattr(annotator, "cpu_timings", None)
    before_wall, before_cpu = Counter(wall or {}), Counter(cpu or {})
    started_cpu = time.process_time()
    annotations = annotator.annotate(list(texts), list(languages))
    job_cpu = time.process_time() - started_cpu
    return AnnotateOutcome(annotations, _spent(before_wall, wall), job_cpu, _spent(before_cpu, cpu))


def _spent(before: Counter[str], after: Counter[str] | None) -> dict[str, float]:
    """What each part added to a running total of seconds during one job."""
    spent = Counter(after or {})
    spent.subtract(before)
    return {part: seconds for part, seconds in spent.items() if seconds > 0}


_annotator: Annotator | None = None


def annotate_in_worker(texts: Sequence[str], languages: Sequence[str | None]) -> AnnotateOutcome:
    """The annotation job as a worker runs it; the models are loaded by the first job."""
    global _annotator
    loading = 0.0
    if _annotator is None:
        from pipeline.nlp.annotate import Annotator
        from pipeline.nlp.linking import default_linker

        started, started_cpu = time.perf_counter(), time.process_time()
        _annotator = Annotator()
        default_linker()  # the place index is built now, so that it counts as loading
        loading = time.perf_counter() - started
        loading_cpu = time.process_time() - started_cpu
    outcome = run_annotation(_annotator, texts, languages)
    if loading:
        outcome.seconds["load"] = loading
        outcome.part_cpu_seconds["load"] = loading_cpu
        return dataclasses.replace(outcome, cpu_seconds=outcome.cpu_seconds + loading_cpu)
    return outcome
