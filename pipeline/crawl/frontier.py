"""The crawl frontier: which URLs a source has, when each is due, and what happened last time.

State lives in the ``pages`` table so that a run killed half-way simply continues next time:
pages already fetched have a ``next_fetch`` in the future, the rest are still due. Discovery
pages (feeds, sitemaps, listings) are fetched on every run, conditionally, because they are
where new documents appear; document pages are fetched when due (first sight, re-crawl
interval, or a newer sitemap ``lastmod``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from pipeline.config import Discovery, Source
from pipeline.crawl.archive import ArchiveError, WarcArchive
from pipeline.crawl.discover import (
    DiscoveryError,
    Link,
    parse_feed,
    parse_listing,
    parse_sitemap,
)
from pipeline.crawl.fetch import Fetcher, FetchResult
from pipeline.crawl.urls import canonicalize
from pipeline.store.db import log_fetch, transaction, utcnow

GONE_AFTER = 2
"""A page answering 404/410 this many times in a row is marked gone (never deleted)."""

MAX_BACKOFF = timedelta(days=1)
MAX_SITEMAPS = 50


@dataclass(frozen=True)
class Page:
    """A row of the frontier, as the crawler needs it."""

    url: str
    fetch_url: str
    etag: str | None
    last_modified: str | None
    failures: int
    body_hash: str | None = None  # SHA-256 of the body last stored (``pages.content_hash``)


_PAGE_COLUMNS = "url, fetch_url, etag, last_modified, failures, content_hash"


@dataclass
class CrawlCounts:
    """Counters reported in the ``runs`` table."""

    discovered: int = 0
    fetched: int = 0
    not_modified: int = 0
    unchanged: int = 0  # fetched again (200) with the very same bytes: not extracted again
    gone: int = 0
    failed: int = 0


DocumentHandler = Callable[[Source, Page, FetchResult, int], None]
"""Called with each freshly fetched document page and its ``fetches`` row id."""


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC)


def enqueue(
    db: sqlite_utils.Database, source: Source, links: Iterable[Link], role: str = "document"
) -> int:
    """Add links the source owns to the frontier; return how many were new.

    A URL that differs from a known page only by http/https is that page (sites link both and
    serve the same document). A ``lastmod`` newer than the one stored makes a known page due
    again at once, and brings a page marked gone back to life.
    """
    added = 0
    now = utcnow()
    with transaction(db) as conn:
        for link in links:
            url = canonicalize(link.url)
            if role == "document" and not source.is_document(url):
                continue
            lastmod = _utc_lastmod(link.lastmod)
            row = conn.execute(
                "SELECT url, lastmod FROM pages WHERE url IN (?, ?) ORDER BY url = ? DESC",
                (url, _other_scheme(url), url),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO pages (url, source_id, role, fetch_url, lastmod, first_seen)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (url, source.id, role, link.url, lastmod, now),
                )
                added += 1
            elif lastmod and (row[1] is None or lastmod > row[1]):
                conn.execute(
                    "UPDATE pages SET lastmod = ?, next_fetch = NULL, gone_since = NULL,"
                    " failures = 0 WHERE url = ?",
                    (lastmod, row[0]),
                )
    return added


def _other_scheme(url: str) -> str:
    """``http://x/a`` ↔ ``https://x/a`` (a canonical URL always starts with one of them)."""
    scheme, rest = url.split("://", 1)
    return ("https" if scheme == "http" else "http") + "://" + rest


def _utc_lastmod(value: str | None) -> str | None:
    """A feed or sitemap date as UTC ``YYYY-MM-DDTHH:MM:SSZ``, so that stored values compare as
    strings whatever offset or precision each discovery method wrote (a bare date is midnight
    UTC)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _at(moment)


def due_pages(db: sqlite_utils.Database, source: Source, role: str = "document") -> list[Page]:
    """Pages of ``source`` never fetched or whose next fetch time has come, in the order they
    were discovered (so the first of several URLs for one text becomes the document)."""
    rows = db.conn.execute(
        f"SELECT {_PAGE_COLUMNS} FROM pages"
        " WHERE source_id = ? AND role = ? AND gone_since IS NULL"
        " AND (next_fetch IS NULL OR next_fetch <= ?) ORDER BY first_seen, rowid",
        (source.id, role, utcnow()),
    ).fetchall()
    return [Page(*row) for row in rows]


def _page(db: sqlite_utils.Database, url: str) -> Page | None:
    row = db.conn.execute(f"SELECT {_PAGE_COLUMNS} FROM pages WHERE url = ?", (url,)).fetchone()
    return Page(*row) if row else None


def record_result(
    db: sqlite_utils.Database, source: Source, page: Page, result: FetchResult
) -> str:
    """Update a page after a fetch; return 'ok', 'not_modified', 'gone' or 'failed'."""
    now = _now()
    interval = timedelta(seconds=source.recrawl_seconds)
    if result.not_modified or result.ok:
        outcome = "not_modified" if result.not_modified else "ok"
        values: dict[str, Any] = {"failures": 0, "next_fetch": _at(now + interval)}
        if result.ok:
            values.update(
                etag=result.etag, last_modified=result.last_modified, content_hash=body_hash(result)
            )
    else:
        failures = page.failures + 1
        backoff = min(timedelta(minutes=5) * (2 ** (failures - 1)), MAX_BACKOFF, interval)
        values = {"failures": failures, "next_fetch": _at(now + backoff)}
        outcome = "failed"
        if result.status in (404, 410) and failures >= GONE_AFTER:
            values["gone_since"] = _at(now)
            outcome = "gone"
    values.update(last_fetched=_at(now), last_status=result.status)
    # Plain SQL, not sqlite-utils' update (which commits): the batch records several pages
    # together with their documents in one transaction.
    assignments = ", ".join(f"{column} = ?" for column in values)
    with transaction(db) as conn:
        conn.execute(f"UPDATE pages SET {assignments} WHERE url = ?", (*values.values(), page.url))
    return outcome


def body_hash(result: FetchResult) -> str:
    """SHA-256 of a response body: the same bytes again need no new extraction."""
    return hashlib.sha256(result.body).hexdigest()


def needs_extraction(page: Page, result: FetchResult) -> bool:
    """A successful fetch whose bytes differ from those stored last time."""
    return result.ok and body_hash(result) != page.body_hash


class SourceCrawler:
    """Discovers and fetches one source's pages, handing each fetched document to a callback."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        run_id: int,
        fetcher: Fetcher,
        archive: WarcArchive,
        counts: CrawlCounts,
        log: Callable[[str], None] = lambda _message: None,
    ):
        self.db = db
        self.run_id = run_id
        self.fetcher = fetcher
        self.archive = archive
        self.counts = counts
        self.log = log

    def fetch(self, source: Source, page: Page) -> tuple[FetchResult, int]:
        """Fetch a page conditionally, archive the response and log it in ``fetches``."""
        result = self.fetcher.fetch(
            page.fetch_url,
            allowed_hosts=source.hosts,
            etag=page.etag,
            last_modified=page.last_modified,
            delay=source.delay,
        )
        warc = None
        if result.status is not None and not result.not_modified and result.body:
            try:
                warc = self.archive.write(result)
            except ArchiveError as exc:
                self.log(f"{page.url}: {exc}")
                raise
        fetch_id = log_fetch(self.db, self.run_id, result, warc)
        return result, fetch_id

    def discover(self, source: Source) -> None:
        """Run every discovery method of the source and add what it finds to the frontier."""
        sitemaps_seen: set[str] = set()
        for method in source.discover:
            try:
                self._discover(source, method, sitemaps_seen)
            except DiscoveryError as exc:
                self.counts.failed += 1
                self.log(f"{source.id}: {method.method} {method.url}: {exc}")

    def _discovery_page(self, source: Source, url: str, role: str) -> tuple[FetchResult, int]:
        enqueue(self.db, source, [Link(url=url, lastmod=None, title=None)], role=role)
        page = _page(self.db, canonicalize(url))
        assert page is not None
        result, fetch_id = self.fetch(source, page)
        record_result(self.db, source, page, result)
        return result, fetch_id

    def _discover(self, source: Source, method: Discovery, seen: set[str]) -> None:
        if method.method == "sitemap":
            # An index answering 304 is not parsed, but its children may have changed: the
            # child sitemaps seen on earlier runs are checked (conditionally) as well.
            queue = [method.url, *self._known_sitemaps(source)]
            while queue and len(seen) < MAX_SITEMAPS:
                url = queue.pop(0)
                if canonicalize(url) in seen:
                    continue
                seen.add(canonicalize(url))
                result, _ = self._discovery_page(source, url, "sitemap")
                if not result.ok:
                    self._report(source, url, result)
                    continue
                links, children = parse_sitemap(result.body, result.final_url)
                self.counts.discovered += enqueue(self.db, source, links)
                queue += [c for c in children if source.allows(c)]
            return
        url: str | None = method.url
        pages = 0
        while url and pages < (method.max_pages if method.method == "listing" else 1):
            pages += 1
            result, _ = self._discovery_page(source, url, method.method)
            if not result.ok:
                self._report(source, url, result)
                return
            if method.method == "feed":
                links, url = parse_feed(result.body, result.final_url), None
            else:
                links, url = parse_listing(
                    result.text or "", result.final_url, method.links, method.next
                )
                url = url if url and source.allows(url) else None
            self.counts.discovered += enqueue(self.db, source, links)

    def _known_sitemaps(self, source: Source) -> list[str]:
        rows = self.db.conn.execute(
            "SELECT fetch_url FROM pages WHERE source_id = ? AND role = 'sitemap'"
            " AND gone_since IS NULL ORDER BY first_seen, url",
            (source.id,),
        )
        return [row[0] for row in rows]

    def _report(self, source: Source, url: str, result: FetchResult) -> None:
        if result.not_modified:
            self.counts.not_modified += 1
            return
        self.counts.failed += 1
        self.log(f"{source.id}: {url}: {result.error or f'HTTP {result.status}'}")

    def fetch_document(self, source: Source, page: Page, on_document: DocumentHandler) -> str:
        """Fetch one due document page, hand a changed body to ``on_document``, record the
        outcome ('ok', 'unchanged', 'not_modified', 'gone' or 'failed') and return it.

        A 304, or a 200 carrying exactly the bytes stored last time (servers without
        validators), costs no extraction.
        """
        result, fetch_id = self.fetch(source, page)
        if needs_extraction(page, result):
            # Store the document before the page is marked done: a batch killed in between
            # finds the page still due and fetches it again.
            on_document(source, page, result, fetch_id)
        return self.record_document(source, page, result)

    def record_document(self, source: Source, page: Page, result: FetchResult) -> str:
        """The second half of :meth:`fetch_document`, for callers that store the document
        later (the batch extracts in worker processes): record and count the outcome."""
        same_bytes = result.ok and body_hash(result) == page.body_hash
        outcome = record_result(self.db, source, page, result)
        if outcome == "ok":
            self.counts.fetched += 1
            if same_bytes:
                outcome = "unchanged"
                self.counts.unchanged += 1
        elif outcome == "not_modified":
            self.counts.not_modified += 1
        else:
            setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
            self.log(f"{source.id}: {page.url}: {result.error or f'HTTP {result.status}'}")
        return outcome
