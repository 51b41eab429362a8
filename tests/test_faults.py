"""Faults and bad input: every case ends in a clear message and a consistent database.

The batch runs against :class:`~sites.LocalSite` servers that misbehave on purpose (see
``faulty_site.py``): server errors and rate limits, timeouts, trickling and dropped bodies,
20 MB and binary pages, wrong charsets, redirect loops, endless listings, malformed and hostile
XML, robots.txt that forbids everything, pages that change on every request. Then the process
level: batches killed with SIGKILL at random points and restarted, two batches started at once,
a full disk under the WARC directory, a broken sources file. After each case the database must
pass :func:`assert_consistent`.

Crawling faults do not depend on what the models find, so those batches get
:class:`RecordingAnnotator`; the SIGKILL trials use the real models, because a half-written
annotation is one of the things they look for.
"""

from __future__ import annotations

import errno
import hashlib
import io
import multiprocessing
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from annotators import RecordingAnnotator
from faulty_site import (
    BILLION_LAUGHS,
    HTML,
    PNG,
    RELEASES,
    PressRoom,
    changing_every_request,
    dropped_mid_body,
    endless,
    endless_listing,
    redirect,
    release_page,
    rss,
    trickle,
)
from sites import LocalSite, Reply, Request

import pipeline.batch as batch_module
import pipeline.crawl.archive as archive_module
from pipeline.batch import Batch, BatchFailed, RunSummary
from pipeline.config import REPO_ROOT, load_sources
from pipeline.crawl.fetch import Fetcher
from pipeline.nlp.annotate import Annotator
from pipeline.progress import Progress
from pipeline.store.lock import BatchLockedError

USER_AGENT = "svpipeline-test/0.1 (+https://example.org/pipeline/kontakt)"


# --------------------------------------------------------------------------- helpers


def write_sources(
    path: Path,
    discover: str,
    *,
    hosts: str = "[127.0.0.1]",
    recrawl: str = "6h",
    timeout: float = 1,
    retries: int = 1,
    extra: str = "",
) -> Path:
    """A sources file for one press room under /pm/; ``extra`` adds lines to the defaults."""
    path.write_text(
        f"""defaults:
  user_agent: "{USER_AGENT}"
  delay: 0
  timeout: {timeout}
  retries: {retries}
{extra}
sources:
  - id: pressrum
    name: Pressrum för bostadsfrågor
    kind: press_release
    hosts: {hosts}
    paths: ['^/pm/[a-z0-9-]+$']
    recrawl: {recrawl}
    discover:
{discover}
    selectors:
      title: "article.release h1"
      body: ".release-body"
""",
        encoding="utf-8",
    )
    return path


def feed_and_sitemap(site: LocalSite) -> str:
    return f"      - feed: {site.url('/rss.xml')}\n      - sitemap: {site.url('/sitemap.xml')}"


@dataclass
class Outcome:
    """A finished batch: its summary, what it logged, and what the annotator was sent."""

    summary: RunSummary
    log: str
    annotated: list[str]


def run_batch(sources: Path, work: Path, **options: Any) -> Outcome:
    annotator = RecordingAnnotator()
    log = io.StringIO()
    summary = Batch(
        load_sources(sources),
        db_path=work / "pipeline.db",
        warc_dir=work / "warc",
        annotator=annotator,  # type: ignore[arg-type]
        progress=Progress(log),
        **options,
    ).run()
    return Outcome(summary, log.getvalue(), annotator.texts)


def query(db_path: Path, sql: str, *params: object) -> list[tuple]:
    with closing(sqlite3.connect(db_path, timeout=30)) as conn, conn:
        return conn.execute(sql, params).fetchall()


def assert_consistent(db_path: Path) -> None:
    """What must hold whenever no batch is writing, however the last one ended."""
    with closing(sqlite3.connect(db_path, timeout=30)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        versions = conn.execute(
            "SELECT d.url FROM documents d WHERE d.version != (SELECT COUNT(*)"
            " FROM document_versions v WHERE v.document_id = d.id) OR d.content_hash IS NOT"
            " (SELECT v.content_hash FROM document_versions v"
            "  WHERE v.document_id = d.id AND v.version = d.version)"
        ).fetchall()
        assert versions == [], "a document without its complete version history"
        twins = conn.execute(
            "SELECT content_hash FROM documents GROUP BY content_hash HAVING COUNT(*) > 1"
        ).fetchall()
        assert twins == [], "the same text stored twice"
        half = conn.execute(
            "SELECT url FROM documents d WHERE d.annotated_hash IS NULL AND ("
            " EXISTS (SELECT 1 FROM mentions m WHERE m.document_id = d.id)"
            " OR EXISTS (SELECT 1 FROM document_themes t WHERE t.document_id = d.id))"
        ).fetchall()
        assert half == [], "annotations on a document not marked annotated"


def error_of(db_path: Path, url: str) -> str:
    """The last error recorded for a fetch of ``url``."""
    rows = query(db_path, "SELECT error FROM fetches WHERE url = ? ORDER BY id", url)
    return str(rows[-1][0]) if rows else ""


# --------------------------------------------------------------------------- a faulty page


ROSENGARD = release_page(*RELEASES["ungdomsboende"]).encode("utf-8")
Script = Callable[[LocalSite], Callable[[Request], Reply]]


def always(reply: Reply) -> Script:
    return lambda site: lambda request: reply


def served(replies: Sequence[Reply]) -> Script:
    """The replies in turn, the last one repeated."""

    def script(site: LocalSite) -> Callable[[Request], Reply]:
        queue = list(replies)
        return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]

    return script


@dataclass(frozen=True)
class PageFault:
    """One misbehaving release among healthy ones, and what the batch must make of it."""

    script: Script
    stored: bool
    message: str | None = None  # regular expression for the fetch error and the log line
    requests: int | None = None  # how many times the page is asked for


PAGE_FAULTS = {
    "500 then recovers": PageFault(
        served([Reply(500), Reply(200, ROSENGARD, {"Content-Type": HTML})]), True, requests=2
    ),
    "500 on every attempt": PageFault(
        always(Reply(500)), False, r"HTTP 500 .*after 2 attempts", requests=2
    ),
    "timeout": PageFault(
        always(Reply(200, ROSENGARD, {"Content-Type": HTML}, delay=2.5)),
        False,
        r"timeout after 1 s",
    ),
    "connection dropped mid-body": PageFault(
        always(dropped_mid_body(ROSENGARD)), False, r"connection failed", requests=2
    ),
    "body trickles in": PageFault(
        lambda site: lambda request: trickle(ROSENGARD), False, r"timeout after 1 s"
    ),
    "20 MB streamed": PageFault(
        lambda site: lambda request: endless(20), False, r"larger than 5000000 bytes", requests=1
    ),
    "20 MB announced": PageFault(
        lambda site: lambda request: endless(20, announce=True),
        False,
        r"larger than 5000000 bytes",
        requests=1,
    ),
    "binary served as text/html": PageFault(
        always(Reply(200, PNG, {"Content-Type": HTML})), False, r"binary content \(image/png\)"
    ),
    "UTF-8 labelled ISO-8859-1": PageFault(
        always(Reply(200, ROSENGARD, {"Content-Type": "text/html; charset=iso-8859-1"})), True
    ),
    "cp1252 without any charset": PageFault(
        always(
            Reply(
                200,
                ROSENGARD.decode("utf-8").replace('<meta charset="utf-8">', "").encode("cp1252"),
                {"Content-Type": "text/html"},
            )
        ),
        True,
    ),
    "redirect loop": PageFault(
        lambda site: lambda request: redirect(site.url("/pm/trasig-igen")),
        False,
        r"redirect loop",
    ),
    "page without any text": PageFault(
        always(Reply(200, "<html><body><nav>Meny</nav></body></html>", {"Content-Type": HTML})),
        False,
        r"extraction failed: no main text",
        requests=1,
    ),
}


@pytest.mark.parametrize("fault", PAGE_FAULTS.values(), ids=PAGE_FAULTS.keys())
def test_a_misbehaving_page_costs_only_itself_and_says_why(
    tmp_path: Path, fault: PageFault
) -> None:
    with LocalSite() as site:
        room = PressRoom(site)
        room.publish("trasig")
        site.route("/pm/trasig", fault.script(site))
        site.route("/pm/trasig-igen", redirect(site.url("/pm/trasig")))
        outcome = run_batch(write_sources(tmp_path / "s.yaml", feed_and_sitemap(site)), tmp_path)
        asked = len(site.hits("/pm/trasig"))
    db_path = tmp_path / "pipeline.db"
    broken = room.url("trasig")
    urls = {row[0] for row in query(db_path, "SELECT url FROM documents")}

    assert outcome.summary.status == "completed"
    assert {room.url(slug) for slug in room.slugs} <= urls, "the healthy releases are stored"
    assert (broken in urls) == fault.stored
    if fault.stored:
        [(text,)] = query(db_path, "SELECT text FROM documents WHERE url = ?", broken)
        assert "unga nyanlända mellan arton och tjugofem år i stadsdelen Hageby" in text
    else:
        assert re.search(fault.message or "", error_of(db_path, broken)), error_of(db_path, broken)
        assert re.search(rf"{re.escape(broken)}: .*{fault.message}", outcome.log), outcome.log
        [(last_fetched, next_fetch)] = query(
            db_path, "SELECT last_fetched, next_fetch FROM pages WHERE url = ?", broken
        )
        assert last_fetched and next_fetch > last_fetched, "asked again on a later run"
    if fault.requests is not None:
        assert asked == fault.requests
    assert_consistent(db_path)


def test_429_with_retry_after_is_waited_out_and_the_page_stored(tmp_path: Path) -> None:
    with LocalSite() as site:
        room = PressRoom(site)
        room.publish("trasig")
        site.route(
            "/pm/trasig",
            Reply(429, b"", {"Retry-After": "1"}),
            Reply(200, ROSENGARD, {"Content-Type": HTML}),
        )
        outcome = run_batch(write_sources(tmp_path / "s.yaml", feed_and_sitemap(site)), tmp_path)
        first, second = site.hits("/pm/trasig")
    assert outcome.summary.counts["new"] == 3
    assert second.started - first.started >= 1.0
    assert_consistent(tmp_path / "pipeline.db")


# --------------------------------------------------------------------------- discovery


def test_robots_txt_that_disallows_everything_stops_at_robots_txt(tmp_path: Path) -> None:
    with LocalSite() as site:
        PressRoom(site).publish()
        site.page("/robots.txt", "User-agent: *\nDisallow: /\n", "text/plain")
        outcome = run_batch(write_sources(tmp_path / "s.yaml", feed_and_sitemap(site)), tmp_path)
        paths = {request.path for request in site.requests}
    assert outcome.summary.status == "completed" and outcome.summary.documents == 0
    assert paths == {"/robots.txt"}
    assert f"{site.url('/rss.xml')}: blocked by robots.txt" in outcome.log
    assert f"{site.url('/sitemap.xml')}: blocked by robots.txt" in outcome.log
    assert_consistent(tmp_path / "pipeline.db")


DISCOVERY_FAULTS = {
    "truncated feed": (
        "/rss.xml",
        b'<?xml version="1.0"?><rss><channel><item><link>',
        "the feed is not well-formed XML",
    ),
    "feed that is an entity bomb": ("/rss.xml", BILLION_LAUGHS, "unsafe XML in the feed"),
    "sitemap that is an entity bomb": (
        "/sitemap.xml",
        BILLION_LAUGHS.replace(b"<rss", b"<urlset").replace(b"</rss>", b"</urlset>"),
        "unsafe XML in the sitemap",
    ),
    "sitemap with an external entity": (
        "/sitemap.xml",
        b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<urlset><url><loc>&x;</loc></url></urlset>",
        "unsafe XML in the sitemap",
    ),
    "an HTML page as the sitemap": (
        "/sitemap.xml",
        ROSENGARD,
        "the sitemap is not well-formed XML",
    ),
    "feed that is a PNG": ("/rss.xml", PNG, r"binary content \(image/png\) skipped"),
}


@pytest.mark.parametrize(
    ("path", "body", "message"), DISCOVERY_FAULTS.values(), ids=DISCOVERY_FAULTS.keys()
)
def test_a_broken_or_hostile_feed_or_sitemap_is_reported_and_the_other_one_still_works(
    tmp_path: Path, path: str, body: bytes, message: str
) -> None:
    with LocalSite() as site:
        room = PressRoom(site)
        room.publish()
        site.route(path, Reply(200, body, {"Content-Type": "application/xml"}))
        started = time.monotonic()
        outcome = run_batch(write_sources(tmp_path / "s.yaml", feed_and_sitemap(site)), tmp_path)
        seconds = time.monotonic() - started
    assert outcome.summary.status == "completed"
    assert outcome.summary.documents == 2, "found through the other discovery method"
    assert re.search(rf"{re.escape(site.url(path))}: {message}", outcome.log), outcome.log
    assert outcome.summary.counts["failed"] == 1
    assert seconds < 30, "nothing was expanded"
    assert_consistent(tmp_path / "pipeline.db")


def test_an_endless_listing_is_followed_only_up_to_max_pages(tmp_path: Path) -> None:
    with LocalSite() as site:
        site.route("/pm/", endless_listing(site))
        discover = f'      - listing: {site.url("/pm/")}\n        links: "a.item"\n' + (
            '        next: "a[rel=next]"\n        max_pages: 6'
        )
        outcome = run_batch(write_sources(tmp_path / "s.yaml", discover), tmp_path)
        listings = [r for r in site.requests if r.path.startswith("/pm/?") or r.path == "/pm/"]
    assert outcome.summary.status == "completed"
    assert len(listings) == 6
    assert outcome.summary.counts["discovered"] == 12, "two links on each of the six pages"
    assert_consistent(tmp_path / "pipeline.db")


# --------------------------------------------------------------------------- changing pages


def wait_for_interval() -> None:
    time.sleep(1.1)  # a one-second re-crawl interval; stored times have one-second steps


def test_a_page_that_differs_on_every_request_only_in_its_furniture_stays_one_version(
    tmp_path: Path,
) -> None:
    with LocalSite() as site:
        room = PressRoom(site, [])
        room.publish("token")
        site.route("/pm/token", changing_every_request(*RELEASES["hemloshet"], in_text=False))
        sources = write_sources(tmp_path / "s.yaml", feed_and_sitemap(site), recrawl="1s")
        first = run_batch(sources, tmp_path)
        wait_for_interval()
        second = run_batch(sources, tmp_path)
    assert first.summary.counts["new"] == 1 and len(first.annotated) == 1
    assert second.summary.counts["fetched"] == 1 and second.summary.counts["unchanged"] == 1
    assert second.annotated == [], "the same text is not annotated again"
    assert query(tmp_path / "pipeline.db", "SELECT version FROM documents") == [(1,)]
    assert_consistent(tmp_path / "pipeline.db")


def test_a_page_whose_text_changes_on_every_request_gets_one_version_per_run(
    tmp_path: Path,
) -> None:
    with LocalSite() as site:
        room = PressRoom(site, [])
        room.publish("nyheter")
        site.route("/pm/nyheter", changing_every_request(*RELEASES["hemloshet"], in_text=True))
        sources = write_sources(tmp_path / "s.yaml", feed_and_sitemap(site), recrawl="1s")
        runs = []
        for _ in range(3):
            runs.append(run_batch(sources, tmp_path))
            wait_for_interval()
        asked = len(site.hits("/pm/nyheter"))
    assert [len(run.annotated) for run in runs] == [1, 1, 1]
    assert asked == 3, "fetched once per run, however often it changes"
    assert query(tmp_path / "pipeline.db", "SELECT version FROM documents") == [(3,)]
    assert_consistent(tmp_path / "pipeline.db")


# --------------------------------------------------------------------------- security


def test_only_http_urls_on_the_sources_hosts_are_ever_requested(tmp_path: Path) -> None:
    with LocalSite() as site, LocalSite() as elsewhere:
        room = PressRoom(site)
        links = room.publish()
        other_host = elsewhere.url("/pm/annan").replace("127.0.0.1", "localhost")
        hostile = ["file:///etc/passwd", "ftp://127.0.0.1/pm/fil", other_host]
        site.page("/rss.xml", rss(links + hostile), "application/rss+xml")
        outcome = run_batch(write_sources(tmp_path / "s.yaml", feed_and_sitemap(site)), tmp_path)
        with Fetcher(load_sources(tmp_path / "s.yaml").settings) as fetcher:
            direct = fetcher.fetch("file:///etc/passwd", allowed_hosts=["127.0.0.1", ""])
        assert elsewhere.requests == []
    pages = {row[0] for row in query(tmp_path / "pipeline.db", "SELECT url FROM pages")}
    assert not [url for url in pages if not url.startswith(site.origin)]
    assert outcome.summary.documents == 2
    assert direct.error == "not an http(s) URL: file:///etc/passwd" and direct.status is None


def test_a_host_name_resolving_to_a_private_address_needs_explicit_permission(
    tmp_path: Path,
) -> None:
    with LocalSite() as site:
        port = site.origin.rsplit(":", 1)[1]
        PressRoom(site).publish()
        named = f"http://localhost:{port}"
        site.page("/rss.xml", rss([f"{named}/pm/renovering", f"{named}/pm/byggande"]))
        discover = f"      - feed: {named}/rss.xml"
        refused = run_batch(
            write_sources(tmp_path / "a.yaml", discover, hosts="[localhost]"), tmp_path / "a"
        )
        assert site.requests == [], "nothing is sent to a private address"
        allowed = run_batch(
            write_sources(
                tmp_path / "b.yaml",
                discover,
                hosts="[localhost]",
                extra="  allow_private_addresses: true",
            ),
            tmp_path / "b",
        )
    assert refused.summary.documents == 0
    assert "localhost resolves to the private address 127.0.0.1" in refused.log
    assert "allow_private_addresses: true" in refused.log
    assert allowed.summary.documents == 2


def test_a_redirect_into_a_private_address_is_refused(tmp_path: Path) -> None:
    with LocalSite() as site:
        room = PressRoom(site)
        room.publish("flyttad")
        port = site.origin.rsplit(":", 1)[1]
        site.route("/pm/flyttad", redirect(f"http://localhost:{port}/pm/hemlig"))
        site.page("/pm/hemlig", ROSENGARD.decode("utf-8"))
        sources = write_sources(
            tmp_path / "s.yaml", feed_and_sitemap(site), hosts="[127.0.0.1, localhost]"
        )
        outcome = run_batch(sources, tmp_path)
        assert site.hits("/pm/hemlig") == []
    assert outcome.summary.documents == 2
    assert "redirect to a private address refused" in error_of(
        tmp_path / "pipeline.db", room.url("flyttad")
    )


def test_models_are_stored_as_skops_and_spacy_directories_never_as_pickles() -> None:
    models = REPO_ROOT / "models"
    files = [path for path in models.rglob("*") if path.is_file()]
    assert (models / "themes" / "themes.skops").is_file() and (
        models / "ner" / "config.cfg"
    ).is_file()
    pickled = [p for p in files if p.suffix in {".pkl", ".pickle", ".joblib"}]
    assert pickled == []
    for path in files:  # pickle protocol 2+ starts with 0x80 and the protocol number
        with open(path, "rb") as handle:
            assert handle.read(2) not in {b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"}, path


# --------------------------------------------------------------------------- processes


class Newsroom:
    """Numbered releases served with an ETag (304 when it matches), in one RSS feed; a test
    changes their texts and adds new ones between batches, as a real press room does."""

    def __init__(self, site: LocalSite, count: int, *, delay: float = 0.0):
        self.site = site
        self.delay = delay
        self.texts: dict[str, tuple[str, str]] = {}
        for _ in range(count):
            self.add()

    def url(self, slug: str) -> str:
        return self.site.url(f"/pm/{slug}")

    def add(self) -> str:
        number = len(self.texts) + 1
        title, text = list(RELEASES.values())[number % len(RELEASES)]
        slug = f"nyhet-{number}"
        self.texts[slug] = (
            f"{title} ({number})",
            f"{text} Detta är pressmeddelande nummer {number} från pressrummet.",
        )
        self.site.route(f"/pm/{slug}", self._handler(slug))
        self.site.page("/rss.xml", rss([self.url(s) for s in self.texts]), "application/rss+xml")
        return slug

    def change(self, slug: str, note: str) -> None:
        title, text = self.texts[slug]
        self.texts[slug] = (title, f"{text} {note}")

    def _handler(self, slug: str) -> Callable[[Request], Reply]:
        def handle(request: Request) -> Reply:
            body = release_page(*self.texts[slug]).encode("utf-8")
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            if request.headers.get("if-none-match") == etag:
                return Reply(304, b"", {"ETag": etag})
            return Reply(200, body, {"Content-Type": HTML, "ETag": etag}, self.delay)

        return handle


@pytest.fixture(scope="module")
def annotator() -> Annotator:
    """The real models, loaded once; forked batch processes inherit them."""
    loaded = Annotator()
    loaded.linker.link("", [])  # build the place index before any fork
    return loaded


def _batch_process(sources: Path, work: Path, annotator: object, failure: Path) -> None:
    """A batch in a forked process (which the test may kill at any moment)."""
    try:
        Batch(
            load_sources(sources),
            db_path=work / "pipeline.db",
            warc_dir=work / "warc",
            annotator=annotator,  # type: ignore[arg-type]
            workers=1,
        ).run()
    except BaseException:
        failure.write_text(traceback.format_exc(), encoding="utf-8")
        raise


def progress_marks(db_path: Path) -> tuple[int, int]:
    """(text versions stored, documents annotated for their current text), read-only."""
    if not db_path.exists():
        return 0, 0
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)) as conn:
            row = conn.execute(
                "SELECT (SELECT COUNT(*) FROM document_versions),"
                " (SELECT COUNT(*) FROM documents WHERE annotated_hash = content_hash)"
            ).fetchone()
    except sqlite3.OperationalError:  # the schema is being created
        return 0, 0
    return int(row[0]), int(row[1])


def kill_at(child: Any, mode: str, db_path: Path, rng: random.Random) -> None:
    """SIGKILL ``child`` at a random moment, or once it has stored or annotated a random
    number of documents more, unless it finishes first."""
    versions, annotated = progress_marks(db_path)
    moment = time.monotonic() + rng.uniform(0.0, 1.5)
    more = rng.randint(1, 4)
    reached: dict[str, Callable[[], bool]] = {
        "at a random moment": lambda: time.monotonic() >= moment,
        "while storing documents": lambda: progress_marks(db_path)[0] >= versions + more,
        "while annotating": lambda: progress_marks(db_path)[1] >= annotated + more,
    }
    deadline = time.monotonic() + 120
    while child.is_alive() and time.monotonic() < deadline:
        if reached[mode]():
            os.kill(child.pid, signal.SIGKILL)
            return
        time.sleep(0.005)


KILL_TRIALS = 20
SEED = int(os.environ.get("PIPELINE_FAULT_SEED", "20261122"))


def test_batches_killed_with_sigkill_at_random_points_lose_duplicate_and_half_write_nothing(
    tmp_path: Path, annotator: Annotator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of four documents: several annotation commits per run for the kills to fall
    # between and inside (the forked batches inherit the setting).
    monkeypatch.setattr(batch_module, "ANNOTATE_CHUNK", 4)
    rng = random.Random(SEED)
    db_path = tmp_path / "pipeline.db"
    context = multiprocessing.get_context("fork")
    kills: list[str] = []
    with LocalSite() as site:
        room = Newsroom(site, 16)
        sources = write_sources(
            tmp_path / "s.yaml", f"      - feed: {site.url('/rss.xml')}", timeout=5
        )
        for attempt in range(1, 3 * KILL_TRIALS + 1):
            if len(kills) == KILL_TRIALS:
                break
            for slug in rng.sample(sorted(room.texts), rng.randint(0, 3)):
                room.change(slug, f"Rättelse {attempt}: uppgiften om antalet lägenheter är ändrad.")
            if rng.random() < 0.4:
                room.add()
            mode = rng.choice(["at a random moment", "while storing documents", "while annotating"])
            failure = tmp_path / f"failure-{attempt}.txt"
            child = context.Process(
                target=_batch_process, args=(sources, tmp_path, annotator, failure)
            )
            child.start()
            kill_at(child, mode, db_path, rng)
            child.join(120)
            where = f"trial {attempt} ({mode}, seed {SEED})"
            assert child.exitcode in (0, -signal.SIGKILL), (
                where,
                failure.read_text() if failure.exists() else "",
            )
            if child.exitcode == -signal.SIGKILL:
                kills.append(mode)
            assert_consistent(db_path)
            lost = query(
                db_path,
                "SELECT url FROM pages p WHERE role = 'document' AND content_hash IS NOT NULL"
                " AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.url = p.url)",
            )
            assert lost == [], f"{where}: pages marked done without their document"
            query(db_path, "UPDATE pages SET next_fetch = NULL")  # as if the interval had passed
        resumed = Batch(
            load_sources(sources),
            db_path=db_path,
            warc_dir=tmp_path / "warc",
            annotator=annotator,
            workers=1,
        ).run()
        expected = {room.url(slug): text for slug, (_, text) in room.texts.items()}

    assert len(kills) == KILL_TRIALS, f"only {len(kills)} kills in {attempt} trials"
    assert set(kills) == {"at a random moment", "while storing documents", "while annotating"}
    assert resumed.status == "completed"
    assert_consistent(db_path)
    stored = dict(query(db_path, "SELECT url, text FROM documents"))
    assert sorted(stored) == sorted(expected), "every release exactly once"
    assert all(expected[url] in text for url, text in stored.items()), "the current texts"
    assert query(
        db_path, "SELECT COUNT(*) FROM documents WHERE annotated_hash IS NOT content_hash"
    ) == [(0,)]
    misplaced = query(
        db_path,
        "SELECT COUNT(*) FROM mentions m JOIN documents d ON d.id = m.document_id"
        ' WHERE substr(d.text, m.start + 1, m."end" - m.start) != m.text',
    )
    assert misplaced == [(0,)], "mentions belong to the text they were found in"
    assert query(db_path, "SELECT COUNT(*) > 0 FROM mentions") == [(1,)]
    assert query(db_path, "SELECT SUM(mention_count) FROM entities") == query(
        db_path, "SELECT COUNT(*) FROM mentions"
    )
    statuses = [row[0] for row in query(db_path, "SELECT status FROM runs ORDER BY id")]
    assert set(statuses) <= {"completed", "interrupted"} and statuses[-1] == "completed"
    assert statuses.count("interrupted") <= len(kills)


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_batch_killed_with_sigkill_leaves_no_worker_process_behind(
    tmp_path: Path, annotator: Annotator
) -> None:
    db_path = tmp_path / "pipeline.db"
    with LocalSite() as site:
        room = Newsroom(site, batch_module.PARALLEL_MIN + 24, delay=0.05)
        sources = write_sources(tmp_path / "s.yaml", f"      - feed: {site.url('/rss.xml')}")
        batch = subprocess.Popen(
            [
                *(sys.executable, "-m", "pipeline", "run", "--quiet", "--workers", "2"),
                *("--sources", str(sources), "--db", str(db_path)),
                *("--warc-dir", str(tmp_path / "warc")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 180
        # The first pages are extracted in the batch's own process, then the workers start.
        while progress_marks(db_path)[0] < batch_module.PARALLEL_MIN + 4:
            assert time.monotonic() < deadline, "the batch stored too little"
            assert batch.poll() is None, batch.stderr.read() if batch.stderr else ""
            time.sleep(0.05)
        workers = children_of(batch.pid)
        assert len(workers) >= 2, "extraction runs in worker processes"
        batch.send_signal(signal.SIGKILL)
        batch.wait(30)
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(running(pid) for pid in workers), "workers exit when the batch is gone"
        assert_consistent(db_path)
        resumed = Batch(
            load_sources(sources),
            db_path=db_path,
            warc_dir=tmp_path / "warc",
            annotator=annotator,
            workers=1,
        ).run()
        expected = sorted(room.url(slug) for slug in room.texts)
    assert resumed.status == "completed", "the lock died with the killed batch"
    assert sorted(row[0] for row in query(db_path, "SELECT url FROM documents")) == expected
    assert_consistent(db_path)


def _locked_batch_process(sources: Path, work: Path, start: Any, report: Path) -> None:
    """Wait for the starting signal, then run; exit 3 with the message when refused."""
    start.wait()
    try:
        run_batch(sources, work)
    except BatchLockedError as exc:
        report.write_text(str(exc), encoding="utf-8")
        os._exit(3)


def test_two_batches_started_at_once_one_runs_and_the_other_is_refused(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    with LocalSite() as site:
        room = Newsroom(site, 5, delay=0.3)  # long enough for both to be started
        sources = write_sources(tmp_path / "s.yaml", f"      - feed: {site.url('/rss.xml')}")
        start = context.Event()
        reports = [tmp_path / "first.txt", tmp_path / "second.txt"]
        batches = [
            context.Process(target=_locked_batch_process, args=(sources, tmp_path, start, r))
            for r in reports
        ]
        for process in batches:
            process.start()
        start.set()
        for process in batches:
            process.join(120)
        expected = sorted(room.url(slug) for slug in room.texts)
    codes = sorted(process.exitcode for process in batches)
    assert codes == [0, 3]
    winner = next(p for p in batches if p.exitcode == 0)
    [message] = [r.read_text() for r in reports if r.exists()]
    assert f"another batch is already running on {tmp_path / 'pipeline.db'}" in message
    assert f"(pid {winner.pid})" in message
    assert (
        sorted(row[0] for row in query(tmp_path / "pipeline.db", "SELECT url FROM documents"))
        == expected
    )
    assert query(tmp_path / "pipeline.db", "SELECT status FROM runs") == [("completed",)]
    assert_consistent(tmp_path / "pipeline.db")


class FullDisk:
    """Files opened through it fail with ENOSPC once :attr:`full` is set."""

    def __init__(self) -> None:
        self.full = False

    def open(self, path: Path, mode: str = "r") -> Any:
        disk = self
        handle = open(path, mode)  # noqa: SIM115 - handed to the archive, which closes it

        class OnDisk:
            def write(self, data: bytes) -> int:
                if disk.full:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return handle.write(data)

            def __getattr__(self, name: str) -> Any:
                return getattr(handle, name)

            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc_info: object) -> None:
                handle.close()

        return OnDisk()


def test_a_full_disk_under_the_warc_directory_stops_the_batch_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk()
    monkeypatch.setattr(archive_module, "open", disk.open, raising=False)
    db_path = tmp_path / "pipeline.db"
    with LocalSite() as site:
        room = Newsroom(site, 4)
        filling = room._handler("nyhet-3")

        def fill_the_disk(request: Request) -> Reply:
            if len(site.hits("/pm/nyhet-3")) == 1:  # the first request, not the retry later
                disk.full = True
            return filling(request)

        site.route("/pm/nyhet-3", fill_the_disk)  # the disk fills up while it is downloaded
        sources = write_sources(tmp_path / "s.yaml", f"      - feed: {site.url('/rss.xml')}")
        with pytest.raises(BatchFailed) as failed:
            run_batch(sources, tmp_path)
        assert "No space left on device" in str(failed.value)
        assert str(tmp_path / "warc") in str(failed.value), "the message names the file"
        assert "the next run continues" in str(failed.value)
        [(status, message)] = query(db_path, "SELECT status, message FROM runs")
        assert status == "failed" and "No space left on device" in message
        stored = {row[0] for row in query(db_path, "SELECT url FROM documents")}
        assert stored == {room.url("nyhet-1"), room.url("nyhet-2")}
        assert_consistent(db_path)
        archived = query(
            db_path,
            "SELECT warc_file, warc_offset, warc_length FROM fetches WHERE warc_file IS NOT NULL",
        )
        for warc_file, offset, length in archived:  # what was archived before stays readable
            archive_module.read_record(
                tmp_path / "warc", archive_module.WarcRef(warc_file, offset, length)
            )

        disk.full = False  # space freed
        again = run_batch(sources, tmp_path)
        expected = sorted(room.url(slug) for slug in room.texts)
    assert again.summary.status == "completed" and again.summary.counts["new"] == 2
    assert sorted(row[0] for row in query(db_path, "SELECT url FROM documents")) == expected
    assert_consistent(db_path)


BROKEN_SOURCES = {
    "broken YAML": (
        "sources:\n  - id: pressrum\n    name: [oavslutad\n",
        r"s\.yaml:\d+: not valid YAML",
    ),
    "unknown kind": (
        "sources:\n  - id: pressrum\n    name: Pressrum\n    kind: pressmeddelande\n"
        "    hosts: [127.0.0.1]\n    discover:\n      - feed: http://127.0.0.1/rss.xml\n",
        r"s\.yaml:4: source 'pressrum', key 'sources\.0\.kind': Input should be",
    ),
    "a file:// feed": (
        "sources:\n  - id: pressrum\n    name: Pressrum\n    hosts: [127.0.0.1]\n"
        "    discover:\n      - feed: file:///etc/passwd\n",
        r"s\.yaml:6: .*expected an absolute http\(s\) URL",
    ),
}


@pytest.mark.parametrize(("text", "message"), BROKEN_SOURCES.values(), ids=BROKEN_SOURCES.keys())
def test_an_invalid_sources_file_is_reported_by_line_and_nothing_is_written(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pipeline", "run", "--sources", str(tmp_path / "s.yaml")),
            *("--db", str(tmp_path / "pipeline.db"), "--warc-dir", str(tmp_path / "warc")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]
