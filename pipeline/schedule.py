"""Running the batch on each source's re-crawl interval, in the foreground, for a service manager.

Rules, all derived from the ``runs`` table so that a restart (or a cron job) picks up exactly
where the last process left off:

* A source is **due** ``recrawl`` after the start of its last completed run, and at once when it
  has never completed one. A run that was stopped or killed does not count as done: the source
  is due again at once, and the crawl continues from the frontier (pages already stored are
  not fetched again). After a run that *failed* (an exception), the source waits
  :data:`RETRY_AFTER` so that a persistent error does not turn into a tight loop.
* Each wake-up runs **one batch** over every source due at that moment, under the usual batch
  lock. When another process holds the lock (someone ran ``pipeline run`` by hand), the
  scheduler waits :data:`LOCK_RETRY` and looks again.
* **Stopping.** SIGTERM or SIGINT sets a stop event. Between batches the scheduler exits at once.
  During a batch, the batch finishes the page or annotation chunk at hand, closes its ``runs``
  row as ``stopped`` and the scheduler exits with status 0, well inside a service manager's stop
  timeout. A page fetch already waiting for a polite delay or a ``Retry-After`` still completes
  (at most :data:`pipeline.crawl.fetch.MAX_WAIT` seconds per wait), because cutting the wait
  short would mean sending the request early. A second signal stops without waiting; even
  SIGKILL leaves the database consistent, and the next run resumes.
"""

from __future__ import annotations

import getpass
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from pipeline.batch import Batch, RunSummary
from pipeline.config import REPO_ROOT, SourcesConfig
from pipeline.progress import Progress
from pipeline.store.db import open_db
from pipeline.store.lock import BatchLockedError

RETRY_AFTER = timedelta(minutes=10)
LOCK_RETRY = timedelta(minutes=1)
CRON_STEPS = (1, 2, 5, 10, 15)
"""Minutes between cron invocations that divide an hour evenly; the largest one not longer
than the shortest re-crawl interval is used."""


@dataclass(frozen=True)
class SourceRuns:
    """What the ``runs`` table says about one source."""

    last_completed: datetime | None = None
    last_started: datetime | None = None
    last_status: str | None = None


def source_history(db_path: Path) -> dict[str, SourceRuns]:
    """The last completed and the last attempted run of every source named in ``runs``."""
    if not Path(db_path).exists():
        return {}
    db = open_db(db_path)
    try:
        rows = db.conn.execute("SELECT sources, started, status FROM runs ORDER BY id").fetchall()
    finally:
        db.close()
    history: dict[str, SourceRuns] = {}
    for sources, started, status in rows:
        moment = _parse(started)
        for source_id in filter(None, (s.strip() for s in (sources or "").split(","))):
            before = history.get(source_id, SourceRuns())
            completed = moment if status == "completed" else before.last_completed
            history[source_id] = SourceRuns(completed, moment, status)
    return history


def due_times(
    config: SourcesConfig, history: dict[str, SourceRuns], now: datetime
) -> dict[str, datetime]:
    """When each configured source is next due (a time at or before ``now`` means: due)."""
    due: dict[str, datetime] = {}
    for source in config.sources:
        runs = history.get(source.id, SourceRuns())
        when = now
        if runs.last_completed is not None:
            when = runs.last_completed + timedelta(seconds=source.recrawl_seconds)
        if runs.last_status == "failed" and runs.last_started is not None:
            when = max(when, runs.last_started + RETRY_AFTER)
        elif runs.last_status in ("stopped", "interrupted", "running"):
            when = min(when, now)
        due[source.id] = when
    return due


class Scheduler:
    """Runs due sources, then sleeps until the next one is due, until ``stop`` is set.

    One :class:`Batch` object is reused, so the NER and theme models are loaded once. ``now``
    and ``wait`` can be replaced in tests; ``wait(seconds)`` must return early when ``stop`` is
    set (``stop.wait`` does).
    """

    def __init__(
        self,
        batch: Batch,
        *,
        progress: Progress | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        wait: Callable[[float], object] | None = None,
    ):
        self.batch = batch
        self.config = batch.config
        self.stop = batch.stop
        self.progress = progress or batch.progress
        self._now = now
        self._wait = wait or self.stop.wait

    def due(self) -> tuple[list[str], datetime]:
        """The sources due now, and when the next not-yet-due source will be."""
        now = self._now()
        times = due_times(self.config, source_history(self.batch.db_path), now)
        ready = [source_id for source_id, when in times.items() if when <= now]
        later = [when for when in times.values() if when > now]
        return ready, min(later, default=now + LOCK_RETRY)

    def run_once(self) -> RunSummary | None:
        """Run one batch over the sources due now.

        Returns None when nothing is due, when another batch holds the lock, or when the batch
        failed: the error is logged and the sources wait :data:`RETRY_AFTER`, so one broken
        run does not end a service that should keep the other sources up to date.
        """
        ready, upcoming = self.due()
        if not ready:
            self.progress.log(f"nothing due; next source due at {_show(upcoming)}")
            return None
        self.progress.log(f"running {', '.join(ready)}")
        try:
            summary = self.batch.run(ready)
        except BatchLockedError as exc:
            self.progress.log(f"{exc}; trying again in {LOCK_RETRY.seconds // 60} min")
            return None
        except Exception as exc:  # the runs row already says 'failed' with the message
            self.progress.log(f"the run failed: {type(exc).__name__}: {exc}")
            return None
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary.counts.items() if v)
        self.progress.log(
            f"run {summary.run_id} {summary.status} in {summary.duration:.1f} s"
            f"{': ' + counts if counts else ''}"
        )
        return summary

    def run_forever(self) -> None:
        """Alternate between running due sources and sleeping, until a stop is requested."""
        self.progress.log(f"scheduler started for {len(self.config.sources)} sources")
        while not self.stop.is_set():
            summary = self.run_once()
            if self.stop.is_set():
                break
            ready, upcoming = self.due()
            if ready and summary is not None and summary.status == "completed":
                continue  # a source became due while the batch ran
            if ready:
                upcoming = self._now() + LOCK_RETRY
            seconds = max((upcoming - self._now()).total_seconds(), 1.0)
            self.progress.log(f"sleeping until {_show(upcoming)}")
            self._wait(seconds)
        self.progress.log("scheduler stopped")


def install_stop_handlers(stop: threading.Event, progress: Progress) -> None:
    """First SIGTERM/SIGINT: finish the step at hand and stop. Second: stop right away."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        progress.log(f"{signal.Signals(signum).name}: stopping after the current step")

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


# --------------------------------------------------------------------------- unit printers


def pipeline_executable() -> str:
    """The installed ``pipeline`` command of this environment, absolute and shell-quoted.

    The script next to the running interpreter is preferred (a virtualenv's ``bin``), so that a
    unit keeps working when ``PATH`` differs under cron or systemd. The interpreter path is not
    resolved: a virtualenv's ``python`` is a symlink out of the virtualenv.
    """
    beside = Path(sys.executable).absolute().parent / "pipeline"
    if beside.is_file():
        return shlex.quote(str(beside))
    found = shutil.which("pipeline")
    if found:
        return shlex.quote(str(Path(found).absolute()))
    return shlex.join([str(Path(sys.executable).absolute()), "-m", "pipeline"])


def _arguments(sources: Path, db_path: Path, warc_dir: Path) -> str:
    """Absolute paths, quoted for a shell and for systemd's ``ExecStart`` alike."""
    options = {"--sources": sources, "--db": db_path, "--warc-dir": warc_dir}
    return " ".join(f"{k} {shlex.quote(str(Path(v).absolute()))}" for k, v in options.items())


def cron_line(config: SourcesConfig, db_path: Path, warc_dir: Path) -> str:
    """A crontab entry that runs whatever is due every few minutes (``schedule --once``)."""
    shortest = min(source.recrawl_seconds for source in config.sources) // 60
    step = max([s for s in CRON_STEPS if s <= shortest], default=CRON_STEPS[0])
    log = Path(db_path).absolute().parent / "schedule.log"
    command = (
        f"mkdir -p {shlex.quote(str(log.parent))} && cd {shlex.quote(str(REPO_ROOT))}"
        f" && {pipeline_executable()} schedule --once"
        f" {_arguments(config.path, db_path, warc_dir)} >> {shlex.quote(str(log))} 2>&1"
    )
    return (
        f"# pipeline: run the sources that are due, checked every {step} min "
        f"(install with `crontab -e`)\n*/{step} * * * * {command}\n"
    )


def systemd_unit(config: SourcesConfig, db_path: Path, warc_dir: Path) -> str:
    """A service unit that keeps ``pipeline schedule`` running in the foreground."""
    return f"""# Save as /etc/systemd/system/pipeline-schedule.service, then:
#   systemctl daemon-reload && systemctl enable --now pipeline-schedule
[Unit]
Description=Swedish press-release pipeline: scheduled crawls of {config.path.name}
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User={getpass.getuser()}
WorkingDirectory={REPO_ROOT}
ExecStart={pipeline_executable()} schedule {_arguments(config.path, db_path, warc_dir)}
Environment=PYTHONUNBUFFERED=1
# SIGTERM lets the batch finish the page at hand and mark its run as stopped.
KillSignal=SIGTERM
TimeoutStopSec=180
Restart=on-failure
RestartSec=60

[Install]
WantedBy=multi-user.target
"""


def _parse(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _show(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def run_schedule(batch: Batch, *, once: bool = False) -> RunSummary | None:
    """The ``pipeline schedule`` command: one pass (``once``) or the foreground loop."""
    scheduler = Scheduler(batch)
    if once:
        return scheduler.run_once()
    scheduler.run_forever()
    return None
