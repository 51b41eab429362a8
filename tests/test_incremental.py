"""Incremental, polite crawling, proven on whole batches against real HTTP servers.

Every test runs :class:`pipeline.batch.Batch` with a real SQLite file and real WARC files
against :class:`LocalSite` servers on 127.0.0.1. The sites use public-looking host names
(``pressrum.example``), routed to the local servers by :class:`RoutingTransport`, so that
http/https variants, mirror hosts and off-host redirects are real URLs to the crawler.

These tests are about crawling and bookkeeping, not about what the models find, so the batch
gets :class:`RecordingAnnotator`: it has the interface of the real annotator and records which
texts the batch sends it, which is exactly what "re-annotate only what changed" is about.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from annotators import RecordingAnnotator
from sites import LocalSite, Reply, Request

import pipeline.batch as batch_module
import pipeline.crawl.frontier as frontier_module
from pipeline.batch import Batch, RunSummary
from pipeline.config import SourcesConfig, load_sources
from pipeline.sample import RoutingTransport
from pipeline.store.db import open_db

USER_AGENT = "svpipeline-test/0.1 (+https://example.org/pipeline/kontakt)"

RELEASES = {
    "renovering": (
        "Hyresgästföreningen kräver stopp för renovräkningar i Rosengård",
        [
            "Hyresgästföreningen region Skåne kräver att Malmö stad ställer krav på "
            "fastighetsägarna i Rosengård innan fler hus renoveras med hyreshöjningar på "
            "upp till sextio procent.",
            "Många hushåll har bott i området i över tjugo år och har inte råd att bo kvar. "
            "Föreningen har samlat in tusen namnunderskrifter från boende på Ramels väg.",
            "Vi vill se en renoveringsplan där hyresgästerna själva väljer standard, säger "
            "ordföranden för föreningen i Malmö.",
        ],
    ),
    "byggande": (
        "Bostadsbyggandet i Skåne väntas halveras nästa år",
        [
            "Fastighetsägarna Syd bedömer att antalet påbörjade hyresrätter i Skåne halveras "
            "jämfört med förra året, främst på grund av höga räntor och byggkostnader.",
            "Störst blir nedgången i Lund och Helsingborg, där flera projekt har pausats. "
            "I Malmö påbörjas fortfarande bostäder i Hyllie och på Västra hamnen.",
            "Organisationen efterlyser ett statligt stöd för hyresrätter med rimliga hyror.",
        ],
    ),
    "ungdomsboende": (
        "Nytt boende för unga nyanlända öppnar i Norrköping",
        [
            "Hyresbostäder i Norrköping öppnar i augusti ett boende med trettio lägenheter "
            "för unga nyanlända mellan arton och tjugofem år i stadsdelen Hageby.",
            "Boendet drivs tillsammans med Norrköpings kommun och föreningen Refugees Welcome "
            "Sweden, som matchar de boende med faddrar i närområdet.",
            "Målet är att de unga ska ha ett eget förstahandskontrakt inom två år.",
        ],
    ),
}


# --------------------------------------------------------------------------- site content


def release_page(
    title: str,
    paragraphs: Sequence[str],
    *,
    meta_charset: str | None = "utf-8",
    date: str = "12 mars 2024",
) -> str:
    """A press-room page with navigation and footer around the release."""
    meta = f'<meta charset="{meta_charset}">' if meta_charset else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="sv"><head>{meta}<title>{title} | Pressrum</title></head>'
        '<body><nav class="site-nav"><a href="/">Start</a> <a href="/pm/">Pressmeddelanden</a>'
        f'</nav><article class="release"><h1>{title}</h1>'
        f'<p class="release-date">Publicerad {date}</p><div class="release-body">{body}</div>'
        "</article><footer>Pressrum för bostadsfrågor · press@pressrum.example</footer>"
        "</body></html>"
    )


def rss(links: Sequence[str]) -> str:
    items = "".join(
        f"<item><title>Pressmeddelande</title><link>{escape(u)}</link></item>" for u in links
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Pressrum</title><link>http://pressrum.example/</link>{items}</channel></rss>"
    )


def sitemap(entries: Sequence[tuple[str, str]]) -> str:
    urls = "".join(f"<url><loc>{escape(u)}</loc><lastmod>{m}</lastmod></url>" for u, m in entries)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    )


class Content:
    """Mutable site content served with an ETag, answering If-None-Match with 304."""

    def __init__(self, site: LocalSite, *, validators: bool = True) -> None:
        self.site = site
        self.validators = validators
        self.bodies: dict[str, tuple[str, str]] = {}

    def put(self, path: str, body: str, content_type: str = "text/html; charset=utf-8") -> None:
        self.bodies[path] = (body, content_type)
        self.site.route(path, self._handler(path))

    def release(self, path: str, key: str, extra: str | None = None) -> None:
        title, paragraphs = RELEASES[key]
        self.put(path, release_page(title, [*paragraphs, *([extra] if extra else [])]))

    def _handler(self, path: str) -> Callable[[Request], Reply]:
        def handle(request: Request) -> Reply:
            body, content_type = self.bodies[path]
            data = body.encode("utf-8")
            headers = {"Content-Type": content_type}
            if self.validators:
                headers["ETag"] = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
                if request.headers.get("if-none-match") == headers["ETag"]:
                    return Reply(304, b"", {"ETag": headers["ETag"]})
            return Reply(200, data, headers)

        return handle


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


def routes(**sites: LocalSite) -> RoutingTransport:
    """Host name → local server, e.g. ``routes(**{"pressrum.example": site})``."""
    return RoutingTransport({h: ("127.0.0.1", urlsplit(s.origin).port) for h, s in sites.items()})


def sources(
    tmp_path: Path,
    discover: str,
    *,
    hosts: str = "[pressrum.example]",
    recrawl: str = "6h",
    delay: float = 0.0,
    retries: int = 1,
) -> SourcesConfig:
    """A sources file with one press room, validated like a user's file."""
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"""defaults:
  user_agent: "{USER_AGENT}"
  delay: {delay}
  timeout: 5
  retries: {retries}
sources:
  - id: pressrum
    name: Pressrum för bostadsfrågor
    kind: press_release
    hosts: {hosts}
    paths: ['^/pm/[a-z-]+/?$']
    recrawl: {recrawl}
    discover:
{textwrap.indent(textwrap.dedent(discover).strip(), "      ")}
    selectors:
      title: "article.release h1"
      date: ".release-date"
      body: ".release-body"
""",
        encoding="utf-8",
    )
    return load_sources(path)


class Runner:
    """Runs batches on one database, the way the scheduler would, and opens the result."""

    def __init__(self, config: SourcesConfig, work: Path, transport: RoutingTransport):
        self.config = config
        self.work = work
        self.transport = transport
        self.annotator = RecordingAnnotator()

    def run(self, **options: object) -> RunSummary:
        self.annotator.texts.clear()
        batch = Batch(
            self.config,
            db_path=self.work / "pipeline.db",
            warc_dir=self.work / "warc",
            annotator=self.annotator,  # type: ignore[arg-type]
            transport=self.transport,
            **options,  # type: ignore[arg-type]
        )
        return batch.run()

    def query(self, sql: str, *params: object) -> list[tuple]:
        db = open_db(self.work / "pipeline.db")
        try:
            return db.conn.execute(sql, params).fetchall()
        finally:
            db.close()

    def page(self, url: str) -> dict:
        db = open_db(self.work / "pipeline.db")
        try:
            return dict(db["pages"].get(url))
        finally:
            db.close()


def press_room(tmp_path: Path, site: LocalSite, discover: str, **options: object) -> Runner:
    """A runner for one press room served by ``site`` as ``pressrum.example``."""
    config = sources(tmp_path, discover, **options)  # type: ignore[arg-type]
    return Runner(config, tmp_path, routes(**{"pressrum.example": site}))


def counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[tuple]:
    """Wrap ``module.name`` so that every call is recorded (and still done)."""
    real = getattr(module, name)
    calls: list[tuple] = []

    def wrapper(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def requests_for(site: LocalSite, path: str) -> list[Request]:
    """Requests for ``path`` whatever query string they carried."""
    return [r for r in site.requests if urlsplit(r.path).path == path]


def wait_for_interval(seconds: float = 1.1) -> None:
    """Let a one-second re-crawl interval (or failure back-off) pass: times have 1 s steps."""
    time.sleep(seconds)


PR = "http://pressrum.example"


# --------------------------------------------------------------------------- conditional GET


def test_a_304_costs_no_parsing_no_extraction_and_no_annotation(
    tmp_path: Path, site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = Content(site)
    content.put("/rss.xml", rss([f"{PR}/pm/{key}" for key in RELEASES]), "application/rss+xml")
    for key in RELEASES:
        content.release(f"/pm/{key}", key)
    runner = press_room(tmp_path, site, f"- feed: {PR}/rss.xml", recrawl="1s")
    first = runner.run()
    assert first.counts["new"] == 3 and len(runner.annotator.texts) == 3

    extractions = counting(monkeypatch, batch_module, "extract_page")
    feed_parses = counting(monkeypatch, frontier_module, "parse_feed")
    wait_for_interval()
    again = runner.run()

    assert again.counts["not_modified"] == 4, "the feed and the three releases answer 304"
    assert again.counts["fetched"] == 0 and again.counts["new"] == 0
    assert extractions == [] and feed_parses == []
    assert runner.annotator.texts == []
    for key in RELEASES:
        second = site.hits(f"/pm/{key}")[1]
        assert second.headers["if-none-match"].startswith('"')
    assert runner.query("SELECT COUNT(*) FROM document_versions") == [(3,)]


def test_the_same_bytes_from_a_server_without_validators_are_not_extracted_again(
    tmp_path: Path, site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = Content(site, validators=False)
    content.put("/rss.xml", rss([f"{PR}/pm/renovering"]), "application/rss+xml")
    content.release("/pm/renovering", "renovering")
    runner = press_room(tmp_path, site, f"- feed: {PR}/rss.xml", recrawl="1s")
    runner.run()
    extractions = counting(monkeypatch, batch_module, "extract_page")
    wait_for_interval()
    again = runner.run()

    assert again.counts["fetched"] == 1 and again.counts["unchanged"] == 1
    assert extractions == [] and runner.annotator.texts == []
    assert "if-none-match" not in site.hits("/pm/renovering")[1].headers


# --------------------------------------------------------------------------- changes


def test_changed_text_adds_a_version_and_only_that_document_is_annotated_again(
    tmp_path: Path, site: LocalSite
) -> None:
    content = Content(site)
    content.put("/rss.xml", rss([f"{PR}/pm/{key}" for key in RELEASES]), "application/rss+xml")
    for key in RELEASES:
        content.release(f"/pm/{key}", key)
    runner = press_room(tmp_path, site, f"- feed: {PR}/rss.xml", recrawl="1s")
    runner.run()
    correction = "Rättelse: hyreshöjningarna gäller 240 lägenheter, inte 420 som vi först skrev."
    content.release("/pm/renovering", "renovering", extra=correction)
    wait_for_interval()
    again = runner.run()

    assert again.counts["changed"] == 1 and again.counts["new"] == 0
    assert again.counts["not_modified"] == 3, "the feed and the two other releases"
    assert len(runner.annotator.texts) == 1 and correction in runner.annotator.texts[0]
    versions = runner.query(
        "SELECT v.version, v.text FROM document_versions v JOIN documents d"
        " ON d.id = v.document_id WHERE d.url = ? ORDER BY v.version",
        f"{PR}/pm/renovering",
    )
    assert [v for v, _ in versions] == [1, 2]
    assert correction not in versions[0][1] and correction in versions[1][1]
    assert runner.query("SELECT version FROM documents WHERE url = ?", f"{PR}/pm/renovering") == [
        (2,)
    ]
    assert runner.query("SELECT COUNT(*) FROM document_versions") == [(4,)]


def test_a_newer_sitemap_lastmod_makes_a_page_due_before_its_interval(
    tmp_path: Path, site: LocalSite
) -> None:
    content = Content(site)
    stamps = {"renovering": "2024-03-12T09:00:00+01:00", "byggande": "2024-03-14T10:30:00+01:00"}

    def publish_sitemap() -> None:
        content.put(
            "/sitemap.xml",
            sitemap([(f"{PR}/pm/{key}", stamp) for key, stamp in stamps.items()]),
            "application/xml",
        )

    publish_sitemap()
    for key in stamps:
        content.release(f"/pm/{key}", key)
    runner = press_room(tmp_path, site, f"- sitemap: {PR}/sitemap.xml", recrawl="6h")
    assert runner.run().counts["new"] == 2

    unchanged = runner.run()
    assert unchanged.counts["fetched"] == 0 and unchanged.counts["not_modified"] == 1
    assert len(site.hits("/pm/renovering")) == 1, "not due before the six-hour interval"

    content.release("/pm/renovering", "renovering", extra="Uppdaterad med nya siffror från SCB.")
    stamps["renovering"] = "2024-03-20T08:15:00Z"
    publish_sitemap()
    updated = runner.run()

    assert updated.counts["fetched"] == 1 and updated.counts["changed"] == 1
    assert len(site.hits("/pm/renovering")) == 2 and len(site.hits("/pm/byggande")) == 1
    assert runner.page(f"{PR}/pm/renovering")["lastmod"] == "2024-03-20T08:15:00Z"


def test_child_sitemaps_are_checked_even_when_the_index_answers_304(
    tmp_path: Path, site: LocalSite
) -> None:
    content = Content(site)
    index = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{PR}/sitemap-pm.xml</loc></sitemap></sitemapindex>"
    )
    content.put("/sitemap.xml", index, "application/xml")
    content.put("/sitemap-pm.xml", sitemap([(f"{PR}/pm/renovering", "2024-03-12")]), "text/xml")
    content.release("/pm/renovering", "renovering")
    content.release("/pm/byggande", "byggande")
    runner = press_room(tmp_path, site, f"- sitemap: {PR}/sitemap.xml")
    assert runner.run().counts["new"] == 1

    entries = [(f"{PR}/pm/renovering", "2024-03-12"), (f"{PR}/pm/byggande", "2024-03-14")]
    content.put("/sitemap-pm.xml", sitemap(entries), "text/xml")
    again = runner.run()

    assert site.hits("/sitemap.xml")[1].headers["if-none-match"], "the index is asked again"
    assert again.counts["new"] == 1 and again.counts["discovered"] == 1
    assert len(site.hits("/sitemap-pm.xml")) == 2


# --------------------------------------------------------------------------- identity


def test_one_press_release_reached_through_many_urls_is_one_document(
    tmp_path: Path, site: LocalSite
) -> None:
    content = Content(site)
    content.release("/pm/ungdomsboende", "ungdomsboende")
    content.put(
        "/rss.xml",
        rss(
            [
                "https://pressrum.example/pm/ungdomsboende?utm_source=rss&utm_medium=feed",
                "http://pressrum.example/pm/ungdomsboende/",
            ]
        ),
        "application/rss+xml",
    )
    content.put(
        "/sitemap.xml",
        sitemap(
            [
                ("http://pressrum.example/pm/ungdomsboende", "2024-03-12"),
                ("https://pressrum.example/pm/ungdomsboende/", "2024-03-12"),
                ("http://spegel.pressrum.example/pm/ungdomsboende", "2024-03-12"),
            ]
        ),
        "application/xml",
    )
    config = sources(
        tmp_path,
        f"""
        - feed: {PR}/rss.xml
        - sitemap: {PR}/sitemap.xml
        """,
        hosts="[pressrum.example, spegel.pressrum.example]",
    )
    transport = routes(**{"pressrum.example": site, "spegel.pressrum.example": site})
    runner = Runner(config, tmp_path, transport)
    summary = runner.run()

    fetched = [r.headers["host"] for r in requests_for(site, "/pm/ungdomsboende")]
    assert sorted(fetched) == ["pressrum.example", "spegel.pressrum.example"]
    assert runner.query("SELECT url FROM documents") == [
        ("https://pressrum.example/pm/ungdomsboende",)
    ], "the first URL discovered is the document, the mirror its duplicate"
    assert summary.counts["new"] == 1 and summary.counts["duplicate"] == 1
    assert summary.counts["failed"] == 0
    assert len(runner.annotator.texts) == 1
    pages = runner.query("SELECT url FROM pages WHERE role = 'document' ORDER BY url")
    assert pages == [
        ("http://spegel.pressrum.example/pm/ungdomsboende",),
        ("https://pressrum.example/pm/ungdomsboende",),
    ]


# --------------------------------------------------------------------------- failures


def test_a_page_answering_404_twice_is_marked_gone_kept_and_left_alone(
    tmp_path: Path, site: LocalSite
) -> None:
    content = Content(site)
    content.put("/sitemap.xml", sitemap([(f"{PR}/pm/byggande", "2024-03-14")]), "application/xml")
    content.release("/pm/byggande", "byggande")
    runner = press_room(tmp_path, site, f"- sitemap: {PR}/sitemap.xml", recrawl="1s")
    runner.run()
    site.route("/pm/byggande", Reply(404, "<h1>Sidan finns inte</h1>"), Reply(410, "Borttagen"))

    wait_for_interval()
    once = runner.run()
    page = runner.page(f"{PR}/pm/byggande")
    assert once.counts["failed"] == 1 and once.counts["gone"] == 0
    assert page["failures"] == 1 and page["gone_since"] is None

    wait_for_interval()  # the back-off is capped by the one-second interval
    twice = runner.run()
    page = runner.page(f"{PR}/pm/byggande")
    assert twice.counts["gone"] == 1
    assert page["gone_since"] is not None and page["last_status"] == 410
    assert runner.query("SELECT COUNT(*) FROM documents") == [(1,)], "the document is kept"

    wait_for_interval()
    runner.run()
    assert len(site.hits("/pm/byggande")) == 3, "a gone page is not requested again"

    content.release("/pm/byggande", "byggande", extra="Sidan är återpublicerad.")
    content.put("/sitemap.xml", sitemap([(f"{PR}/pm/byggande", "2024-04-02")]), "application/xml")
    back = runner.run()
    assert back.counts["changed"] == 1
    assert runner.page(f"{PR}/pm/byggande")["gone_since"] is None, "a newer lastmod revives it"


def test_failing_pages_back_off_exponentially(tmp_path: Path, site: LocalSite) -> None:
    content = Content(site)
    content.put("/rss.xml", rss([f"{PR}/pm/renovering"]), "application/rss+xml")
    site.route("/pm/renovering", Reply(500, "<h1>Internt fel</h1>"))
    runner = press_room(tmp_path, site, f"- feed: {PR}/rss.xml", recrawl="1d", retries=0)

    def delay_after_fetch() -> timedelta:
        page = runner.page(f"{PR}/pm/renovering")
        fetched = datetime.fromisoformat(page["last_fetched"])
        return datetime.fromisoformat(page["next_fetch"]) - fetched

    assert runner.run().counts["failed"] == 1
    assert delay_after_fetch() == timedelta(minutes=5)

    assert runner.run().counts["failed"] == 0, "not due during the back-off"
    assert len(site.hits("/pm/renovering")) == 1

    for failures, expected in ((2, 10), (3, 20), (4, 40)):
        # Let the back-off pass: move the page's next fetch into the past.
        db = sqlite3.connect(tmp_path / "pipeline.db")
        db.execute("UPDATE pages SET next_fetch = '2000-01-01T00:00:00Z' WHERE role = 'document'")
        db.commit()
        db.close()
        runner.run()
        assert runner.page(f"{PR}/pm/renovering")["failures"] == failures
        assert delay_after_fetch() == timedelta(minutes=expected)


def test_429_and_503_are_retried_with_back_off_and_retry_after(
    tmp_path: Path, site: LocalSite
) -> None:
    content = Content(site)
    content.put(
        "/rss.xml", rss([f"{PR}/pm/renovering", f"{PR}/pm/byggande"]), "application/rss+xml"
    )
    title, paragraphs = RELEASES["renovering"]
    ok = Reply(200, release_page(title, paragraphs), {"Content-Type": "text/html; charset=utf-8"})
    site.route("/pm/renovering", Reply(429, "Lugna ner dig", {"Retry-After": "2"}), ok)
    title, paragraphs = RELEASES["byggande"]
    ok = Reply(200, release_page(title, paragraphs), {"Content-Type": "text/html; charset=utf-8"})
    site.route("/pm/byggande", Reply(503, "Underhåll pågår"), ok)
    runner = press_room(tmp_path, site, f"- feed: {PR}/rss.xml", retries=2)
    summary = runner.run()

    assert summary.counts["new"] == 2 and summary.counts["failed"] == 0
    for path, at_least in (("/pm/renovering", 2.0), ("/pm/byggande", 1.0)):
        first, second = site.hits(path)
        assert second.started - first.finished >= at_least - 0.05, path


# --------------------------------------------------------------------------- politeness


def test_robots_txt_crawl_delay_and_the_user_agent_are_obeyed_by_the_batch(
    tmp_path: Path, site: LocalSite
) -> None:
    site.page(
        "/robots.txt", "User-agent: *\nDisallow: /pm/intern\nCrawl-delay: 0.4\n", "text/plain"
    )
    content = Content(site)
    links = [f"{PR}/pm/{key}" for key in RELEASES] + [f"{PR}/pm/intern"]
    content.put("/rss.xml", rss(links), "application/rss+xml")
    for key in RELEASES:
        content.release(f"/pm/{key}", key)
    content.release("/pm/intern", "byggande")
    runner = press_room(tmp_path, site, f"- feed: {PR}/rss.xml")
    summary = runner.run()

    assert site.hits("/pm/intern") == []
    assert summary.counts["new"] == 3 and summary.counts["failed"] == 1
    error = runner.query("SELECT error FROM fetches WHERE url = ?", f"{PR}/pm/intern")
    assert error == [("blocked by robots.txt",)]
    requests = [r for r in site.requests if r.path != "/robots.txt"]
    for before, after in itertools.pairwise(requests):
        assert after.started - before.finished >= 0.38
    assert {r.headers["user-agent"] for r in site.requests} == {USER_AGENT}


def test_the_source_delay_spaces_requests_to_one_host(tmp_path: Path, site: LocalSite) -> None:
    content = Content(site)
    content.put("/rss.xml", rss([f"{PR}/pm/{key}" for key in RELEASES]), "application/rss+xml")
    for key in RELEASES:
        content.release(f"/pm/{key}", key)
    runner = press_room(tmp_path, site, f"- feed: {PR}/rss.xml", delay=0.3)
    runner.run()
    assert len(site.requests) == 5
    for before, after in itertools.pairwise(site.requests):
        assert after.started - before.finished >= 0.28


def test_a_redirect_to_another_host_is_refused_by_the_batch(
    tmp_path: Path, site: LocalSite
) -> None:
    content = Content(site)
    links = [f"{PR}/pm/flyttad", f"{PR}/pm/gammal-adress"]
    content.put("/rss.xml", rss(links), "application/rss+xml")
    site.route("/pm/flyttad", Reply(301, headers={"Location": "http://annan.example/pm/flyttad"}))
    site.route("/pm/gammal-adress", Reply(301, headers={"Location": "/pm/byggande"}))
    content.release("/pm/byggande", "byggande")
    with LocalSite() as other:
        content_elsewhere = Content(other)
        content_elsewhere.release("/pm/flyttad", "renovering")
        runner = Runner(
            sources(tmp_path, f"- feed: {PR}/rss.xml"),
            tmp_path,
            routes(**{"pressrum.example": site, "annan.example": other}),
        )
        summary = runner.run()

    assert other.requests == [], "nothing may be requested from a host outside the source"
    assert summary.counts["failed"] == 1 and summary.counts["new"] == 1
    error = runner.query("SELECT error FROM fetches WHERE url = ?", f"{PR}/pm/flyttad")
    assert error == [("redirect to other host refused: http://annan.example/pm/flyttad",)]
    stored = runner.query("SELECT url, title FROM documents")
    assert stored == [(f"{PR}/pm/gammal-adress", RELEASES["byggande"][0])]


@pytest.mark.parametrize(
    ("encoding", "header", "meta"),
    [
        ("latin-1", "text/html; charset=iso-8859-1", None),
        ("latin-1", "text/html", "iso-8859-1"),
        ("latin-1", "text/html", None),
        ("utf-8", "text/html", None),
        ("cp1252", "text/html; charset=windows-1252", "windows-1252"),
    ],
)
def test_swedish_letters_survive_every_charset_situation(
    tmp_path: Path, site: LocalSite, encoding: str, header: str, meta: str | None
) -> None:
    title, paragraphs = RELEASES["ungdomsboende"]
    body = release_page(title, paragraphs, meta_charset=meta).encode(encoding)
    site.route("/pm/ungdomsboende", Reply(200, body, {"Content-Type": header}))
    Content(site).put("/rss.xml", rss([f"{PR}/pm/ungdomsboende"]), "application/rss+xml")
    runner = press_room(tmp_path, site, f"- feed: {PR}/rss.xml")
    runner.run()
    [(stored_title, text)] = runner.query("SELECT title, text FROM documents")
    assert stored_title == title
    assert "nyanlända mellan arton" in text and "Hyresbostäder i Norrköping öppnar" in text
    assert "förstahandskontrakt" in text


# --------------------------------------------------------------------------- stopping


def test_a_stop_request_ends_the_batch_after_the_page_at_hand_and_the_next_run_resumes(
    tmp_path: Path, site: LocalSite
) -> None:
    content = Content(site)
    content.put("/rss.xml", rss([f"{PR}/pm/{key}" for key in RELEASES]), "application/rss+xml")
    for key in RELEASES:
        content.release(f"/pm/{key}", key)
    stop = threading.Event()
    title, paragraphs = RELEASES["renovering"]
    page = release_page(title, paragraphs)

    def stop_while_serving(request: Request) -> Reply:
        stop.set()  # as a SIGTERM arriving while this page is fetched
        return Reply(200, page, {"Content-Type": "text/html; charset=utf-8"})

    site.route("/pm/renovering", stop_while_serving)
    runner = press_room(tmp_path, site, f"- feed: {PR}/rss.xml")
    stopped = runner.run(stop=stop)

    assert stopped.status == "stopped"
    assert stopped.counts["new"] == 1, "the page at hand is stored, the others wait"
    assert runner.annotator.texts == [], "annotation is not started after a stop"
    resumed = runner.run()
    assert resumed.status == "completed" and resumed.counts["new"] == 2
    assert len(runner.annotator.texts) == 3, "the stopped run's document is annotated now"
    assert len(site.hits("/pm/renovering")) == 1
    assert runner.query("SELECT status FROM runs ORDER BY id") == [("stopped",), ("completed",)]


# --------------------------------------------------------------------------- processes


def slow_press_room(site: LocalSite, count: int, delay: float) -> list[str]:
    """``count`` releases answering after ``delay`` seconds each, listed in a feed."""
    paths = []
    for number in range(count):
        key = list(RELEASES)[number % len(RELEASES)]
        title, paragraphs = RELEASES[key]
        path = f"/pm/{key}-{'abcdefghijklmnopqrstuvwxyz'[number % 26]}{'x' * (number // 26)}"
        lines = [*paragraphs, f"Detta är pressmeddelande nummer {number + 1} i serien."]
        html = release_page(f"{title} ({number + 1})", lines)
        site.route(path, Reply(200, html, {"Content-Type": "text/html; charset=utf-8"}, delay))
        paths.append(path)
    feed = rss([f"{site.origin}{p}" for p in paths])
    site.route("/rss.xml", Reply(200, feed, {"Content-Type": "application/rss+xml"}))
    return paths


def local_sources(tmp_path: Path, site: LocalSite) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"""defaults:
  user_agent: "{USER_AGENT}"
  delay: 0
  timeout: 5
  retries: 0
sources:
  - id: pressrum
    name: Pressrum för bostadsfrågor
    kind: press_release
    hosts: [127.0.0.1]
    paths: ['^/pm/[a-z-]+$']
    discover:
      - feed: {site.origin}/rss.xml
    selectors:
      title: "article.release h1"
      body: ".release-body"
""",
        encoding="utf-8",
    )
    return path


def pipeline_run(sources_file: Path, work: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "pipeline", "run", "--quiet"),
            *("--sources", str(sources_file), "--db", str(work / "pipeline.db")),
            *("--warc-dir", str(work / "warc")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def documents_stored(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    with sqlite3.connect(db_path, timeout=10) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        except sqlite3.OperationalError:  # the schema is not created yet
            return 0


def test_a_batch_killed_with_sigkill_leaves_a_consistent_database_and_the_next_resumes(
    tmp_path: Path, site: LocalSite
) -> None:
    paths = slow_press_room(site, count=30, delay=0.15)
    sources_file = local_sources(tmp_path, site)
    db_path = tmp_path / "pipeline.db"
    killed = pipeline_run(sources_file, tmp_path)
    deadline = time.monotonic() + 60
    while documents_stored(db_path) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(10)
    assert killed.returncode == -signal.SIGKILL
    before = documents_stored(db_path)
    assert 8 <= before < 30, "the batch was killed in the middle of the crawl"

    again = pipeline_run(sources_file, tmp_path)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        urls = [row[0] for row in conn.execute("SELECT url FROM documents")]
        runs = conn.execute("SELECT status, new FROM runs ORDER BY id").fetchall()
        unannotated = conn.execute(
            "SELECT COUNT(*) FROM documents WHERE annotated_hash IS NOT content_hash"
        ).fetchone()[0]
    assert sorted(urls) == sorted(f"{site.origin}{p}" for p in paths), "each document once"
    assert runs[0][0] == "interrupted" and runs[1] == ("completed", 30 - before)
    assert unannotated == 0
    fetched_twice = [p for p in paths if len(site.hits(p)) > 1]
    assert len(fetched_twice) <= 1, "only a page fetched but not yet marked done is refetched"


def test_a_second_batch_on_the_same_database_is_refused_while_one_runs(
    tmp_path: Path, site: LocalSite
) -> None:
    slow_press_room(site, count=20, delay=0.3)
    sources_file = local_sources(tmp_path, site)
    first = pipeline_run(sources_file, tmp_path)
    deadline = time.monotonic() + 60
    while not site.hits("/rss.xml") and time.monotonic() < deadline:
        time.sleep(0.05)
    second = pipeline_run(sources_file, tmp_path)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 1
    assert "another batch is already running" in err and f"pid {first.pid}" in err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
