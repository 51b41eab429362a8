"""The scheduler: due times from the ``runs`` table, the foreground loop, signals, and the
cron and systemd units it prints.

Loop tests run the real :class:`Batch` against a local press room and a local municipal news
site on 127.0.0.1. Where a test is about *when* batches run, not about what the models find,
the batch gets :class:`RecordingAnnotator` (same interface as the real annotator); the tests
that start ``pipeline schedule`` as a process use the real models, as a user would.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from annotators import RecordingAnnotator
from sites import LocalSite, Reply

from pipeline.batch import Batch
from pipeline.config import REPO_ROOT, SourcesConfig, load_sources
from pipeline.progress import Progress
from pipeline.schedule import (
    LOCK_RETRY,
    RETRY_AFTER,
    Scheduler,
    cron_line,
    due_times,
    source_history,
    systemd_unit,
)
from pipeline.store.db import open_db
from pipeline.store.lock import batch_lock

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ARTICLES = {
    "/pm/hyresforhandling": (
        "Hyresförhandlingen i Malmö klar: hyrorna höjs med 4,8 procent",
        "Hyresgästföreningen och Fastighetsägarna Syd är överens om 2025 års hyror för "
        "drygt 25 000 lägenheter i Malmö. Höjningen blir i genomsnitt 4,8 procent.",
    ),
    "/pm/energiatgarder": (
        "Allmännyttan i Skåne sänker energianvändningen med en femtedel",
        "Sveriges Allmännytta redovisar att bostadsbolagen i Skåne har minskat "
        "energianvändningen med tjugo procent sedan 2019, främst genom nya värmepumpar.",
    ),
    "/nyheter/vinterparkering": (
        "Nya regler för vinterparkering i Norrköping",
        "Från den 1 december gäller nya regler för gatuparkering i centrala Norrköping. "
        "Kommunen plogar natten mot tisdag och fredag på Drottninggatan.",
    ),
    "/nyheter/bostadsformedling": (
        "Bostadsförmedlingen förenklar köreglerna",
        "Malmö stads bostadsförmedling slopar kravet på att förnya sin köplats varje år. "
        "Ändringen gäller från och med januari och berör över 80 000 sökande.",
    ),
}


def page(title: str, text: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8"><title>{title}</title>'
        f'</head><body><nav><a href="/">Start</a></nav><article><h1>{title}</h1>'
        f'<div class="body"><p>{text}</p><p>{text}</p></div></article>'
        "<footer>Kontakt: info@example.org</footer></body></html>"
    )


def feed(site: LocalSite, prefix: str) -> str:
    items = "".join(
        f"<item><title>{title}</title><link>{site.origin}{path}</link></item>"
        for path, (title, _) in ARTICLES.items()
        if path.startswith(prefix)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'
    )


def serve_articles(site: LocalSite, delay: float = 0.0) -> None:
    for path, (title, text) in ARTICLES.items():
        site.route(path, Reply(200, page(title, text), {"Content-Type": "text/html"}, delay))
    site.route("/pm/rss.xml", Reply(200, feed(site, "/pm/"), {"Content-Type": "text/xml"}))
    site.route(
        "/nyheter/rss.xml", Reply(200, feed(site, "/nyheter/"), {"Content-Type": "text/xml"})
    )


def write_sources(tmp_path: Path, site: LocalSite, *, press: str, news: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"""defaults:
  user_agent: "svpipeline-test/0.1 (+https://example.org/pipeline/kontakt)"
  delay: 0
  timeout: 5
  retries: 0
sources:
  - id: pressrum
    name: Pressrum för bostadsfrågor
    kind: press_release
    hosts: [127.0.0.1]
    paths: ['^/pm/[a-z]+$']
    recrawl: {press}
    discover:
      - feed: {site.origin}/pm/rss.xml
    selectors: {{title: "article h1", body: ".body"}}
  - id: kommun
    name: Kommunens nyheter
    kind: news
    hosts: [127.0.0.1]
    paths: ['^/nyheter/[a-z]+$']
    recrawl: {news}
    discover:
      - feed: {site.origin}/nyheter/rss.xml
    selectors: {{title: "article h1", body: ".body"}}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        serve_articles(running)
        yield running


def config_for(
    tmp_path: Path, site: LocalSite, press: str = "6h", news: str = "1d"
) -> SourcesConfig:
    return load_sources(write_sources(tmp_path, site, press=press, news=news))


def make_batch(
    config: SourcesConfig,
    tmp_path: Path,
    annotator: RecordingAnnotator,
    progress: Progress | None = None,
) -> Batch:
    return Batch(
        config,
        db_path=tmp_path / "pipeline.db",
        warc_dir=tmp_path / "warc",
        annotator=annotator,  # type: ignore[arg-type]
        progress=progress or Progress(io.StringIO()),
    )


def add_run(db_path: Path, sources: str, started: datetime, status: str) -> None:
    db = open_db(db_path)
    db["runs"].insert({"started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "status": status,
                       "sources": sources})  # fmt: skip
    db.close()


def runs(db_path: Path) -> list[tuple[str, str]]:
    """(sources, status) of every run; empty while another process is creating the schema."""
    try:
        with sqlite3.connect(db_path, timeout=10) as conn:
            return conn.execute("SELECT sources, status FROM runs ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []


# --------------------------------------------------------------------------- due times


def test_a_source_is_due_its_interval_after_its_last_completed_run(
    tmp_path: Path, site: LocalSite
) -> None:
    config = config_for(tmp_path, site, press="6h", news="1d")
    db_path = tmp_path / "pipeline.db"
    assert due_times(config, source_history(db_path), NOW) == {"pressrum": NOW, "kommun": NOW}

    add_run(db_path, "pressrum, kommun", NOW - timedelta(hours=8), "completed")
    add_run(db_path, "pressrum", NOW - timedelta(hours=2), "completed")
    due = due_times(config, source_history(db_path), NOW)
    assert due == {
        "pressrum": NOW + timedelta(hours=4),
        "kommun": NOW + timedelta(hours=16),
    }


def test_a_stopped_or_killed_run_makes_its_sources_due_at_once(
    tmp_path: Path, site: LocalSite
) -> None:
    config = config_for(tmp_path, site)
    db_path = tmp_path / "pipeline.db"
    add_run(db_path, "pressrum, kommun", NOW - timedelta(hours=1), "completed")
    add_run(db_path, "pressrum", NOW - timedelta(minutes=20), "stopped")
    add_run(db_path, "kommun", NOW - timedelta(minutes=10), "interrupted")
    assert due_times(config, source_history(db_path), NOW) == {"pressrum": NOW, "kommun": NOW}


def test_after_a_failed_run_a_source_waits_before_the_next_attempt(
    tmp_path: Path, site: LocalSite
) -> None:
    config = config_for(tmp_path, site, press="1m")
    db_path = tmp_path / "pipeline.db"
    failed_at = NOW - timedelta(minutes=3)
    add_run(db_path, "pressrum", failed_at, "failed")
    due = due_times(config, source_history(db_path), NOW)
    assert due["pressrum"] == failed_at + RETRY_AFTER
    assert due["kommun"] == NOW, "the other source has never run"


# --------------------------------------------------------------------------- the loop


def test_the_loop_runs_each_source_on_its_own_interval_until_stopped(
    tmp_path: Path, site: LocalSite
) -> None:
    config = config_for(tmp_path, site, press="2s", news="1h")
    annotator = RecordingAnnotator()
    batch = make_batch(config, tmp_path, annotator)
    sleeps: list[float] = []

    def wait(seconds: float) -> None:
        sleeps.append(seconds)
        if len(runs(tmp_path / "pipeline.db")) >= 3:
            batch.stop.set()
        batch.stop.wait(seconds)

    Scheduler(batch, wait=wait).run_forever()

    assert runs(tmp_path / "pipeline.db") == [
        ("pressrum, kommun", "completed"),
        ("pressrum", "completed"),
        ("pressrum", "completed"),
    ]
    assert all(0 < s <= 2.0 for s in sleeps), "it sleeps until the two-second source is due"
    requests = [r.path for r in site.requests]
    assert requests.count("/nyheter/rss.xml") == 1 and requests.count("/pm/rss.xml") == 3


def test_once_runs_what_is_due_and_then_nothing(tmp_path: Path, site: LocalSite) -> None:
    config = config_for(tmp_path, site)
    log = io.StringIO()
    scheduler = Scheduler(
        make_batch(config, tmp_path, RecordingAnnotator()), progress=Progress(log)
    )
    first = scheduler.run_once()
    assert first is not None and first.status == "completed" and first.counts["new"] == 4
    assert scheduler.run_once() is None
    assert "nothing due; next source due at" in log.getvalue()


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


def test_progress_is_per_source_with_a_live_line_on_a_terminal_and_plain_lines_in_a_log(
    tmp_path: Path, site: LocalSite
) -> None:
    config = config_for(tmp_path, site)
    log, terminal = io.StringIO(), Terminal()
    make_batch(config, tmp_path / "a", RecordingAnnotator(), Progress(log)).run()
    lines = log.getvalue().splitlines()
    assert "crawl pressrum: 2 to do" in lines and "crawl kommun: 2 to do" in lines
    assert any(line.startswith("crawl pressrum: 2 done in") for line in lines)
    assert "\r" not in log.getvalue() and "\033" not in log.getvalue()

    make_batch(config, tmp_path / "b", RecordingAnnotator(), Progress(terminal)).run()
    assert "\r\033[Kcrawl pressrum: 1/2" in terminal.getvalue()
    assert "\r\033[Kcrawl kommun: 2/2" in terminal.getvalue()


def test_a_held_lock_or_a_failed_batch_does_not_end_the_scheduler(
    tmp_path: Path, site: LocalSite
) -> None:
    config = config_for(tmp_path, site)
    log = io.StringIO()
    scheduler = Scheduler(
        make_batch(config, tmp_path, RecordingAnnotator(fail=True)), progress=Progress(log)
    )
    with batch_lock(tmp_path / "pipeline.db"):
        assert scheduler.run_once() is None
    assert "another batch is already running" in log.getvalue()
    assert f"trying again in {LOCK_RETRY.seconds // 60} min" in log.getvalue()

    assert scheduler.run_once() is None
    assert "the run failed: RuntimeError: modellen kunde inte läsas in" in log.getvalue()
    assert runs(tmp_path / "pipeline.db") == [("pressrum, kommun", "failed")]
    ready, upcoming = scheduler.due()
    assert ready == [] and upcoming > datetime.now(UTC) + RETRY_AFTER - timedelta(minutes=1)


# --------------------------------------------------------------------------- the process


class Schedule:
    """``pipeline schedule`` running as a process; its log (stderr) goes to a file to watch."""

    def __init__(self, log: Path, *args: str):
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "schedule", *args],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def says(self, text: str) -> bool:
        return text in self.log.read_text()

    def terminate_and_wait(self) -> str:
        os.kill(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)
        return self.log.read_text()


def documents(db_path: Path) -> int:
    try:
        with sqlite3.connect(db_path, timeout=10) as conn:
            return conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_until(condition, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigterm_during_a_crawl_ends_the_batch_cleanly_and_the_next_run_resumes(
    tmp_path: Path,
) -> None:
    with LocalSite() as slow:
        serve_articles(slow, delay=0.4)
        sources_file = write_sources(tmp_path, slow, press="6h", news="6h")
        db_path = tmp_path / "pipeline.db"
        options = ("--sources", str(sources_file), "--db", str(db_path))
        options += ("--warc-dir", str(tmp_path / "warc"))
        schedule = Schedule(tmp_path / "schedule.log", *options)
        wait_until(lambda: documents(db_path) >= 1)
        err = schedule.terminate_and_wait()

        assert schedule.process.returncode == 0, err
        assert "SIGTERM: stopping after the current step" in err
        assert "scheduler stopped" in err
        stored = documents(db_path)
        assert 1 <= stored < 4
        assert runs(db_path) == [("pressrum, kommun", "stopped")]
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        resumed = subprocess.run(
            [sys.executable, "-m", "pipeline", "schedule", "--once", *options],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert runs(db_path)[-1] == ("pressrum, kommun", "completed")
        assert documents(db_path) == 4
        refetched = [p for p in ARTICLES if len(slow.hits(p)) > 1]
        assert len(refetched) <= 1


def test_sigterm_while_sleeping_between_batches_exits_at_once(
    tmp_path: Path, site: LocalSite
) -> None:
    sources_file = write_sources(tmp_path, site, press="6h", news="6h")
    db_path = tmp_path / "pipeline.db"
    schedule = Schedule(
        tmp_path / "schedule.log",
        *("--sources", str(sources_file), "--db", str(db_path), "--warc-dir", str(tmp_path / "w")),
    )
    wait_until(lambda: schedule.says("sleeping until"))  # six hours, unless stopped
    assert runs(db_path) == [("pressrum, kommun", "completed")]
    sent = time.monotonic()
    err = schedule.terminate_and_wait()
    assert schedule.process.returncode == 0, err
    assert time.monotonic() - sent < 5
    assert err.rstrip().endswith("scheduler stopped")


# --------------------------------------------------------------------------- units


def test_the_cron_line_runs_the_installed_command_with_absolute_paths(
    tmp_path: Path, site: LocalSite
) -> None:
    config = config_for(tmp_path, site, press="6h", news="1d")
    db_path, warc = tmp_path / "data" / "pipeline.db", tmp_path / "data" / "warc"
    comment, line = cron_line(config, db_path, warc).splitlines()
    assert comment.startswith("#")
    fields = line.split(maxsplit=5)
    assert fields[:5] == ["*/15", "*", "*", "*", "*"]
    words = shlex.split(fields[5])
    assert words[:7] == ["mkdir", "-p", str(db_path.parent), "&&", "cd", str(REPO_ROOT), "&&"]
    executable = Path(words[7])
    assert executable.is_absolute() and os.access(executable, os.X_OK)
    assert words[8:10] == ["schedule", "--once"]
    assert not db_path.parent.exists(), "the first cron run finds no data directory yet"

    # What cron would do: run the command in a shell; it crawls what is due and logs.
    done = subprocess.run(["sh", "-c", fields[5]], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert runs(db_path) == [("pressrum, kommun", "completed")]
    assert "running pressrum, kommun" in (tmp_path / "data" / "schedule.log").read_text()


def test_a_short_interval_gives_a_cron_step_that_divides_the_hour(
    tmp_path: Path, site: LocalSite
) -> None:
    config = config_for(tmp_path, site, press="7m", news="1d")
    line = cron_line(config, tmp_path / "p.db", tmp_path / "w").splitlines()[1]
    assert line.startswith("*/5 * * * * ")


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path, site: LocalSite) -> None:
    config = config_for(tmp_path, site)
    unit = tmp_path / "pipeline-schedule.service"
    unit.write_text(systemd_unit(config, tmp_path / "pipeline.db", tmp_path / "warc"))
    text = unit.read_text()
    assert f"WorkingDirectory={REPO_ROOT}\n" in text
    assert f" schedule --sources {config.path} --db {tmp_path / 'pipeline.db'}" in text
    assert "KillSignal=SIGTERM" in text
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr
