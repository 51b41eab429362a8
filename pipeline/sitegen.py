"""The government press releases of ``../shared/data/press/regeringen`` as a local website.

The scale test and ``make bench`` need a site big enough to show what a crawl costs and what a
re-crawl saves, and one whose pages change under control. :class:`PressSite` turns the
Markdown files (``<kind>/<yyyy>/<mm>/<slug>.md``, first line ``# Title``) into a site with the
furniture of a real one: pages with header, cookie banner, breadcrumbs, share links and footer;
paginated listings per kind, newest first; an RSS feed of the newest items; and a sitemap index
with one sitemap per year carrying ``lastmod``. :class:`PressSiteServer` serves it on 127.0.0.1
with ETag and Last-Modified and answers conditional requests with 304, like a well-behaved CMS.

Everything is deterministic: publication days are derived from the slug, the newest articles
(with a text of their own) are held back so that :meth:`PressSite.add` can publish them later,
and :meth:`PressSite.change` picks the same pages for the same call sequence. The site has its
own clock, so the dates it shows never depend on when a test runs.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pipeline.config import REPO_ROOT
from pipeline.sample import BackgroundServer, reply

CORPUS_DIR = REPO_ROOT.parent / "shared" / "data" / "press" / "regeringen"
KINDS = {"pressmeddelanden": "Pressmeddelanden", "debattartiklar": "Debattartiklar"}
PER_PAGE = 20
FEED_ITEMS = 50
SITE_CLOCK = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
"""The moment the site's own clock starts; every change moves it on by one minute."""

_MONTHS = ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
           "september", "oktober", "november", "december")  # fmt: skip
_ARTICLE_PATH = re.compile(r"^/(?P<kind>[a-z]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<slug>[^/]+)/$")
_SITEMAP_PATH = re.compile(r"^/sitemap-(?P<year>\d{4})\.xml$")


class CorpusMissingError(FileNotFoundError):
    """The shared press-release corpus is not beside the project."""


@dataclass(frozen=True)
class Article:
    """One press release or debate article as the site publishes it."""

    kind: str
    slug: str
    title: str
    markdown: str
    published: datetime
    modified: datetime
    revision: int = 0

    @property
    def path(self) -> str:
        return f"/{self.kind}/{self.published:%Y/%m}/{self.slug}/"


def load_articles(corpus_dir: Path = CORPUS_DIR) -> list[Article]:
    """Every Markdown file of the corpus as an article, oldest first."""
    files = sorted(Path(corpus_dir).glob("*/[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.md"))
    if not files:
        raise CorpusMissingError(f"no press releases found under {corpus_dir}")
    articles = [_article(path) for path in files if path.parts[-4] in KINDS]
    return sorted(articles, key=lambda a: (a.published, a.path))


def _article(path: Path) -> Article:
    kind, year, month, slug = path.parts[-4], int(path.parts[-3]), int(path.parts[-2]), path.stem
    text = path.read_text(encoding="utf-8")
    first, _, body = text.partition("\n")
    # A day and an hour of the office day, derived from the slug: stable from run to run.
    seed = int(hashlib.sha1(slug.encode()).hexdigest()[:8], 16)
    day = 1 + seed % calendar.monthrange(year, month)[1]
    published = datetime(year, month, day, 7 + seed % 9, seed % 60, tzinfo=UTC)
    return Article(
        kind=kind,
        slug=slug,
        title=first.removeprefix("#").strip(),
        markdown=body.strip(),
        published=published,
        modified=published + timedelta(minutes=30),
    )


def distinct_texts(articles: list[Article]) -> set[str]:
    """Paths of the articles whose text is not empty and not shared with another article.

    The corpus has 869 files with a title only, and a few identical announcements; a crawl
    keeps no document for the first and one document for the second. Only articles with a
    text of their own are changed or held back, so that each change or addition is exactly
    one new document version.
    """
    counts = Counter(a.markdown for a in articles)
    return {a.path for a in articles if a.markdown and counts[a.markdown] == 1}


class PressSite:
    """The site's content and its rendering; mutate with :meth:`change` and :meth:`add`.

    ``limit`` keeps only the newest articles (a smaller site for tests); ``reserve`` holds back
    the newest ones with a text of their own, which :meth:`add` publishes later as fresh
    press releases.
    """

    def __init__(
        self,
        corpus_dir: Path = CORPUS_DIR,
        *,
        limit: int | None = None,
        reserve: int = 20,
        articles: list[Article] | None = None,
    ):
        every = articles if articles is not None else load_articles(corpus_dir)
        self._distinct = distinct_texts(every)
        if not 0 <= reserve < len(self._distinct):
            raise ValueError(f"cannot hold back {reserve} of {len(self._distinct)} articles")
        held = [a for a in every if a.path in self._distinct][len(self._distinct) - reserve :]
        held_paths = {a.path for a in held}
        published = [a for a in every if a.path not in held_paths]
        if limit is not None:
            published = published[-limit:]
        self._published = published
        self._reserve = held
        self._clock = SITE_CLOCK
        self._changes = 0
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[bytes, str, datetime]] = {}
        self._refresh()

    def _refresh(self) -> None:
        """Rebuild the look-ups after a change; cached listings, feeds and sitemaps are stale."""
        self._cache.clear()
        self._by_path = {a.path: i for i, a in enumerate(self._published)}
        self._latest = max(a.modified for a in self._published)

    # ------------------------------------------------------------------ content

    @property
    def articles(self) -> list[Article]:
        """The published articles, oldest first."""
        with self._lock:
            return list(self._published)

    def change(self, count: int) -> list[Article]:
        """Add a correction paragraph to ``count`` published articles spread over the site.

        Only articles with a text of their own are picked, and each call picks other pages
        than the call before; the changed pages get a new modification time, so the
        sitemap's ``lastmod`` and the ETag move on.
        """
        with self._lock:
            candidates = [i for i, a in enumerate(self._published) if a.path in self._distinct]
            total = len(candidates)
            if not 0 <= count <= total:
                raise ValueError(f"cannot change {count} of {total} articles")
            step = max(total // max(count, 1), 1)
            offset = self._changes % step
            picked = sorted({candidates[(offset + i * step) % total] for i in range(count)})
            changed = []
            for index in picked:
                self._clock += timedelta(minutes=1)
                article = self._published[index]
                correction = (
                    f"Rättelse {_swedish_date(self._clock)}: i en tidigare version av texten "
                    f"om ”{article.title}” angavs fel datum för beslutet."
                )
                updated = replace(
                    article,
                    markdown=f"{article.markdown}\n\n{correction}",
                    modified=self._clock,
                    revision=article.revision + 1,
                )
                self._published[index] = updated
                changed.append(updated)
            self._changes += 1
            self._refresh()
            return changed

    def add(self, count: int) -> list[Article]:
        """Publish ``count`` held-back articles, dated now by the site's clock."""
        with self._lock:
            if count > len(self._reserve):
                raise ValueError(f"only {len(self._reserve)} articles are held back")
            added = []
            for article in self._reserve[:count]:
                self._clock += timedelta(minutes=1)
                fresh = replace(article, modified=max(self._clock, article.modified))
                self._published.append(fresh)
                added.append(fresh)
            del self._reserve[:count]
            self._refresh()
            return added

    # ------------------------------------------------------------------ rendering

    def render(self, target: str, origin: str) -> tuple[bytes, str, datetime] | None:
        """Body, content type and modification time of a path (with query), or None (404).

        ``origin`` (``http://127.0.0.1:port``) makes the absolute URLs that feeds and
        sitemaps require.
        """
        with self._lock:
            article = self._find(urlsplit(target).path)
            if article is not None:
                return _page(article).encode(), "text/html; charset=utf-8", article.modified
            key = f"{origin}{target}"
            if key not in self._cache:
                rendered = self._render(target, origin)
                if rendered is None:
                    return None
                self._cache[key] = rendered
            return self._cache[key]

    def _render(self, target: str, origin: str) -> tuple[bytes, str, datetime] | None:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        latest = self._latest
        html_type = "text/html; charset=utf-8"
        if path == "/robots.txt":
            rules = f"User-agent: *\nDisallow: /sok/\n\nSitemap: {origin}/sitemap.xml\n"
            return rules.encode(), "text/plain; charset=utf-8", SITE_CLOCK
        if path == "/":
            return _home(self._newest(10)).encode(), html_type, latest
        if path.strip("/") in KINDS and path.endswith("/"):
            return self._listing(path.strip("/"), query)
        if path == "/rss.xml":
            body = _feed(self._newest(FEED_ITEMS), origin)
            return body.encode(), "application/rss+xml; charset=utf-8", latest
        if path == "/sitemap.xml":
            return _sitemap_index(self._by_year(), origin).encode(), "application/xml", latest
        match = _SITEMAP_PATH.match(path)
        if match:
            year = self._by_year().get(int(match["year"]))
            if not year:
                return None
            body = _sitemap(year, origin).encode()
            return body, "application/xml", max(a.modified for a in year)
        return None

    def _listing(
        self, kind: str, query: dict[str, list[str]]
    ) -> tuple[bytes, str, datetime] | None:
        items = [a for a in reversed(self._published) if a.kind == kind]
        pages = max(1, -(-len(items) // PER_PAGE))
        raw = query.get("page", ["1"])[0]
        number = int(raw) if raw.isdigit() else 0
        if not 1 <= number <= pages:
            return None
        chunk = items[(number - 1) * PER_PAGE : number * PER_PAGE]
        body = _listing_page(kind, chunk, number, pages)
        modified = max((a.modified for a in chunk), default=SITE_CLOCK)
        return body.encode(), "text/html; charset=utf-8", modified

    def _newest(self, count: int) -> list[Article]:
        return sorted(self._published, key=lambda a: (a.published, a.path))[-count:][::-1]

    def _by_year(self) -> dict[int, list[Article]]:
        years: dict[int, list[Article]] = {}
        for article in self._published:
            years.setdefault(article.published.year, []).append(article)
        return years

    def _find(self, path: str) -> Article | None:
        index = self._by_path.get(path)
        return None if index is None else self._published[index]


# --------------------------------------------------------------------------- templates


def _swedish_date(moment: datetime) -> str:
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


def _chrome(title: str, main: str, crumbs: list[tuple[str, str]]) -> str:
    """A page with the furniture every government page has around its content."""
    trail = " › ".join(f'<a href="{href}">{html.escape(label)}</a>' for href, label in crumbs)
    return f"""<!DOCTYPE html>
<html lang="sv">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} - Regeringskansliet</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
<div id="cookie-banner" class="cookie-banner">
  <p>Vi använder kakor för att förbättra webbplatsen. Läs mer om kakor.</p>
  <button>Godkänn alla kakor</button> <button>Endast nödvändiga</button>
</div>
<header class="site-header">
  <a class="logo" href="/">Regeringskansliet</a>
  <nav class="main-nav"><ul>
    <li><a href="/pressmeddelanden/">Pressmeddelanden</a></li>
    <li><a href="/debattartiklar/">Debattartiklar</a></li>
    <li><a href="/sok/">Sök</a></li>
    <li><a href="/rss.xml">Prenumerera via RSS</a></li>
  </ul></nav>
</header>
<nav class="breadcrumbs" aria-label="Brödsmulor">{trail}</nav>
<main id="content">
{main}
</main>
<footer class="site-footer">
  <p>Regeringskansliet, 103 33 Stockholm. Telefonväxel 08-405 10 00.</p>
  <ul><li><a href="/om-webbplatsen/">Om webbplatsen</a></li>
  <li><a href="/om-webbplatsen/kakor/">Kakor</a></li>
  <li><a href="/om-webbplatsen/tillganglighet/">Tillgänglighetsredogörelse</a></li></ul>
</footer>
</body>
</html>
"""


def _page(article: Article) -> str:
    label = "Pressmeddelande" if article.kind == "pressmeddelanden" else "Debattartikel"
    updated = ""
    if article.revision:
        updated = (
            f' · Uppdaterad <time datetime="{article.modified:%Y-%m-%d}">'
            f"{_swedish_date(article.modified)}</time>"
        )
    main = f"""<article class="article">
  <p class="kind">{label}</p>
  <h1>{html.escape(article.title)}</h1>
  <p class="published">Publicerad <time datetime="{article.published:%Y-%m-%d}">\
{_swedish_date(article.published)}</time>{updated}</p>
  <div class="article-body">
{markdown_to_html(article.markdown)}
  </div>
  <div class="share">Dela: <a href="/dela?till=facebook">Facebook</a>
    <a href="/dela?till=x">X</a> <a href="/dela?till=linkedin">LinkedIn</a></div>
</article>"""
    crumbs = [("/", "Startsida"), (f"/{article.kind}/", KINDS[article.kind])]
    return _chrome(article.title, main, crumbs)


def _home(newest: list[Article]) -> str:
    items = "\n".join(f'<li><a href="{a.path}">{html.escape(a.title)}</a></li>' for a in newest)
    return _chrome("Startsida", f"<h1>Regeringskansliet</h1>\n<ul>{items}</ul>", [("/", "Start")])


def _listing_page(kind: str, chunk: list[Article], number: int, pages: int) -> str:
    rows = "\n".join(
        f'<li class="list-item"><a class="item-link" href="{a.path}">{html.escape(a.title)}</a>'
        f' <span class="date">{_swedish_date(a.published)}</span></li>'
        for a in chunk
    )
    links = []
    if number > 1:
        links.append(f'<a rel="prev" href="?page={number - 1}">Föregående</a>')
    if number < pages:
        links.append(f'<a rel="next" href="?page={number + 1}">Nästa</a>')
    main = (
        f'<h1>{KINDS[kind]}</h1>\n<ul class="list">\n{rows}\n</ul>\n'
        f'<nav class="pagination">Sida {number} av {pages} {" ".join(links)}</nav>'
    )
    return _chrome(KINDS[kind], main, [("/", "Startsida"), (f"/{kind}/", KINDS[kind])])


def _feed(newest: list[Article], origin: str) -> str:
    items = "\n".join(
        f"<item><title>{html.escape(a.title)}</title><link>{origin}{a.path}</link>"
        f'<guid isPermaLink="true">{origin}{a.path}</guid>'
        f"<pubDate>{format_datetime(a.published, usegmt=True)}</pubDate></item>"
        for a in newest
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Regeringskansliet – senaste</title><link>{origin}/</link>"
        f"<description>Pressmeddelanden och debattartiklar</description>\n{items}\n"
        "</channel></rss>\n"
    )


def _sitemap_index(years: dict[int, list[Article]], origin: str) -> str:
    entries = "\n".join(
        f"<sitemap><loc>{origin}/sitemap-{year}.xml</loc>"
        f"<lastmod>{_w3c(max(a.modified for a in articles))}</lastmod></sitemap>"
        for year, articles in sorted(years.items())
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{entries}\n'
        "</sitemapindex>\n"
    )


def _sitemap(articles: list[Article], origin: str) -> str:
    entries = "\n".join(
        f"<url><loc>{origin}{a.path}</loc><lastmod>{_w3c(a.modified)}</lastmod></url>"
        for a in articles
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{entries}\n</urlset>\n'
    )


def _w3c(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


# --------------------------------------------------------------------------- Markdown


_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BULLET = re.compile(r"^[*-] +")
_NUMBERED = re.compile(r"^\d+\. +")


def markdown_to_html(markdown: str) -> str:
    """The few Markdown constructs the corpus uses: paragraphs, ``##``/``###`` headings,
    bulleted and numbered lists, bold and links."""
    return "\n".join(_blocks(markdown))


def _blocks(markdown: str) -> Iterator[str]:
    for block in re.split(r"\n\s*\n", markdown.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        heading = re.match(r"^(#{2,6}) +(.*)$", lines[0])
        if heading and len(lines) == 1:
            level = len(heading[1])
            yield f"<h{level}>{_inline(heading[2])}</h{level}>"
        elif all(_BULLET.match(line) for line in lines):
            items = "".join(f"<li>{_inline(_BULLET.sub('', line))}</li>" for line in lines)
            yield f"<ul>{items}</ul>"
        elif all(_NUMBERED.match(line) for line in lines):
            items = "".join(f"<li>{_inline(_NUMBERED.sub('', line))}</li>" for line in lines)
            yield f"<ol>{items}</ol>"
        else:
            yield f"<p>{_inline(' '.join(lines))}</p>"


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _LINK.sub(lambda m: f'<a href="{html.escape(m[2])}">{m[1]}</a>', escaped)


# --------------------------------------------------------------------------- serving


class _Handler(BaseHTTPRequestHandler):
    server: _PressHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the server counts requests instead (see :attr:`PressSiteServer.requests`)."""

    def do_GET(self) -> None:
        owner = self.server.owner
        rendered = owner.site.render(self.path, owner.origin)
        if rendered is None:
            self._send(HTTPStatus.NOT_FOUND, b"<h1>Sidan finns inte</h1>", "text/html", {})
            return
        body, content_type, modified = rendered
        if owner.delay and _ARTICLE_PATH.match(urlsplit(self.path).path):
            threading.Event().wait(owner.delay)
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        last_modified = format_datetime(modified, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified}
        match = self.headers.get("If-None-Match")
        since = self.headers.get("If-Modified-Since")
        if match == etag or (match is None and since == last_modified):
            self._send(HTTPStatus.NOT_MODIFIED, b"", None, headers)
            return
        self._send(HTTPStatus.OK, body, content_type, headers)

    def _send(
        self, status: HTTPStatus, body: bytes, content_type: str | None, headers: dict[str, str]
    ) -> None:
        self.server.owner.count(self.path, int(status))
        reply(self, status, body, content_type, headers)


class _PressHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, owner: PressSiteServer):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner


class PressSiteServer(BackgroundServer):
    """Serves a :class:`PressSite` on a free port of 127.0.0.1 inside a ``with`` block.

    ``delay`` holds every article response back that many seconds (a slow site, to kill a
    batch in the middle of a crawl). :attr:`requests` counts (path, status) pairs.
    """

    def __init__(self, site: PressSite, *, delay: float = 0.0):
        self.site = site
        self.delay = delay
        self.requests: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        super().__init__(_PressHTTPServer(self))

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def count(self, path: str, status: int) -> None:
        with self._lock:
            self.requests[(path, status)] += 1

    def statuses(self) -> Counter[int]:
        """Requests per status code since the last :meth:`reset`."""
        with self._lock:
            totals: Counter[int] = Counter()
            for (_, status), n in self.requests.items():
                totals[status] += n
            return totals

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def sources_yaml(self, *, recrawl: str = "6h", listing_pages: int = 5, delay: float = 0) -> str:
        """A sources file for this site: feed, sitemap index and the press-release listing."""
        return f"""defaults:
  user_agent: "svpipeline-bench/0.1 (+https://github.com/svpipeline/pipeline)"
  delay: {delay}
  timeout: 20
  retries: 1
  recrawl: {recrawl}
sources:
  - id: regeringen
    name: Regeringskansliet (lokal kopia)
    kind: press_release
    hosts: [127.0.0.1]
    paths: ['^/(pressmeddelanden|debattartiklar)/20\\d\\d/\\d\\d/[^/]+/?$']
    discover:
      - feed: {self.origin}/rss.xml
      - sitemap: {self.origin}/sitemap.xml
      - listing: {self.origin}/pressmeddelanden/
        links: "a.item-link"
        next: "a[rel=next]"
        max_pages: {listing_pages}
"""
