"""Finding document URLs: RSS/Atom feeds, XML sitemaps and HTML listing pages.

Feeds and sitemaps come from servers we do not control, so XML is parsed only through
``defusedxml`` (no entity expansion, no external references) and every malformed input becomes a
:class:`DiscoveryError` with a sentence a user can act on.

Returned URLs are absolute http(s) URLs as the site published them, minus the fragment: fetching
exactly that URL avoids a redirect per page (``/2024/03/inlagg/`` vs ``/2024/03/inlagg``).
Duplicates are judged by :func:`~pipeline.crawl.urls.canonicalize` (so a feed's
``?utm_source=rss`` copy of a link counts as the same link) and the first occurrence is kept, in
document order. The frontier canonicalises again for its key.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urldefrag, urljoin
from xml.etree.ElementTree import Element, ParseError

from bs4 import BeautifulSoup, Tag
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from soupsieve import SelectorSyntaxError

from pipeline.crawl.urls import canonicalize, is_http_url

MAX_SITEMAP_BYTES = 52_428_800  # the sitemap protocol's limit for an uncompressed file (50 MiB)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DiscoveryError(ValueError):
    """A feed, sitemap or listing page that cannot be used, with the reason in plain words."""


@dataclass(frozen=True)
class Link:
    """A candidate document URL with what the discovery source said about it."""

    url: str
    lastmod: str | None = None  # ISO 8601 date or datetime
    title: str | None = None


# --------------------------------------------------------------------------- feeds


def parse_feed(body: bytes, base_url: str) -> list[Link]:
    """The item links of an RSS 2.0, RSS 1.0 or Atom feed, with their date and title."""
    root = _parse_xml(body, "feed")
    kind = _local(root.tag)
    if kind == "rss":
        items = [i for c in _children(root, "channel") for i in _children(c, "item")]
    elif kind == "RDF":
        items = list(_children(root, "item"))
    elif kind == "feed":
        return _unique(_atom_link(entry, base_url) for entry in _children(root, "entry"))
    else:
        raise DiscoveryError(f"not an RSS or Atom feed: the document element is <{kind}>")
    return _unique(_rss_link(item, base_url) for item in items)


def _rss_link(item: Element, base_url: str) -> Link | None:
    href = _text(item, "link")
    guid = next(_children(item, "guid"), None)
    if not href and guid is not None and guid.get("isPermaLink", "true") != "false":
        href = (guid.text or "").strip()
    date_text = _text(item, "pubDate") or _text(item, "date") or _text(item, "updated")
    return _link(base_url, href, _iso_date(date_text), _text(item, "title"))


def _atom_link(entry: Element, base_url: str) -> Link | None:
    links = list(_children(entry, "link"))
    chosen = next((x for x in links if x.get("rel", "alternate") == "alternate"), None)
    href = (chosen if chosen is not None else links[0]).get("href") if links else None
    date_text = _text(entry, "updated") or _text(entry, "published")
    return _link(base_url, href, _iso_date(date_text), _text(entry, "title"))


# --------------------------------------------------------------------------- sitemaps


def parse_sitemap(body: bytes, base_url: str) -> tuple[list[Link], list[str]]:
    """Document links (with lastmod) of a ``urlset`` and child sitemaps of a ``sitemapindex``.

    Accepts gzip-compressed sitemaps and plain-text sitemaps (one URL per line); namespaces are
    ignored, since many generators get them wrong.
    """
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body)
    if body.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] != b"<":
        return _text_sitemap(body, base_url), []
    root = _parse_xml(body, "sitemap")
    kind = _local(root.tag)
    if kind == "urlset":
        links = (
            _link(base_url, _text(entry, "loc"), _iso_date(_text(entry, "lastmod")), None)
            for entry in _children(root, "url")
        )
        return _unique(links), []
    if kind == "sitemapindex":
        children = (
            _link(base_url, _text(e, "loc"), None, None) for e in _children(root, "sitemap")
        )
        return [], [link.url for link in _unique(children)]
    raise DiscoveryError(f"not a sitemap: the document element is <{kind}>")


def _gunzip(body: bytes) -> bytes:
    """Decompress a gzip sitemap, refusing to inflate past the protocol's size limit."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_SITEMAP_BYTES + 1)
    except zlib.error as exc:
        raise DiscoveryError(f"corrupt gzip-compressed sitemap: {exc}") from None
    if len(data) > MAX_SITEMAP_BYTES:
        raise DiscoveryError(f"sitemap larger than {MAX_SITEMAP_BYTES} bytes when uncompressed")
    if not inflater.eof:
        raise DiscoveryError("corrupt gzip-compressed sitemap: the data ends early")
    return data


def _text_sitemap(body: bytes, base_url: str) -> list[Link]:
    lines = body.decode("utf-8", errors="replace").split()
    urls = [line for line in lines if is_http_url(line)]
    if lines and not urls:
        raise DiscoveryError("not a sitemap: neither XML nor a list of URLs")
    return _unique(_link(base_url, url, None, None) for url in urls)


# --------------------------------------------------------------------------- listing pages


def parse_listing(
    html: str, base_url: str, links: str | None, next: str | None
) -> tuple[list[Link], str | None]:
    """Document links on a listing page and the URL of the next listing page.

    ``links`` selects the links (all ``<a href>`` when None); a selected element that is not a
    link stands for the first link inside it, so a selector may name a whole teaser card.
    ``next`` selects the "next page" link; the result is None when absent or pointing back.
    """
    soup = BeautifulSoup(html, "lxml")
    base_tag = soup.find("base", href=True)
    base = urljoin(base_url, str(base_tag["href"])) if isinstance(base_tag, Tag) else base_url
    elements = _select(soup, links) if links else soup.find_all("a", href=True)
    found = _unique(_anchor_link(element, base) for element in elements)
    return found, _next_page(soup, base, base_url, next) if next else None


def _next_page(soup: BeautifulSoup, base: str, page_url: str, selector: str) -> str | None:
    """The first link matched by ``selector`` that leads somewhere other than this page."""
    here = canonicalize(page_url) if is_http_url(page_url) else None
    for element in _select(soup, selector):
        link = _anchor_link(element, base)
        if link is not None and canonicalize(link.url) != here:
            return link.url
    return None


def _select(soup: BeautifulSoup, selector: str) -> list[Tag]:
    try:
        return soup.select(selector)
    except SelectorSyntaxError as exc:
        raise DiscoveryError(f"invalid CSS selector {selector!r}: {exc}") from None


def _anchor_link(element: Tag, base: str) -> Link | None:
    anchor = element if element.name == "a" and element.get("href") else None
    anchor = anchor or element.select_one("a[href]")
    if anchor is None:
        return None
    title = " ".join(anchor.get_text(" ", strip=True).split()) or anchor.get("title")
    return _link(base, str(anchor["href"]), None, str(title) if title else None)


# --------------------------------------------------------------------------- shared helpers


def _parse_xml(body: bytes, what: str) -> Element:
    """Parse untrusted XML; entity declarations and external references are refused."""
    if body.startswith((b" ", b"\t", b"\r", b"\n")):
        body = body.lstrip()  # an XML declaration after a blank line is a common server slip
    try:
        return fromstring(body)
    except DefusedXmlException as exc:
        raise DiscoveryError(f"unsafe XML in the {what}: {exc}") from None
    except ParseError as exc:
        raise DiscoveryError(f"the {what} is not well-formed XML ({exc})") from None


def _local(tag: str) -> str:
    """``{http://www.sitemaps.org/schemas/sitemap/0.9}url`` → ``url``."""
    return tag.rsplit("}", 1)[-1]


def _children(element: Element, name: str) -> Iterator[Element]:
    return (child for child in element if _local(child.tag) == name)


def _text(element: Element, name: str) -> str | None:
    """The stripped text of the first child called ``name`` that has any text."""
    for child in _children(element, name):
        text = " ".join("".join(child.itertext()).split())
        if text:
            return text
    return None


def _link(base: str, href: str | None, lastmod: str | None, title: str | None) -> Link | None:
    if not href:
        return None
    url = urldefrag(urljoin(base, href.strip())).url
    if not is_http_url(url):
        return None
    return Link(url, lastmod, title)


def _unique(links: Iterable[Link | None]) -> list[Link]:
    """Drop missing links and links canonically equal to an earlier one, keeping the order."""
    seen: set[str] = set()
    out: list[Link] = []
    for link in links:
        if link is None:
            continue
        key = canonicalize(link.url)
        if key not in seen:
            seen.add(key)
            out.append(link)
    return out


def _iso_date(value: str | None) -> str | None:
    """An RFC 822 (RSS) or ISO 8601/W3C (Atom, sitemaps) date as ISO 8601; None if unreadable."""
    if not value:
        return None
    if _DATE_ONLY.match(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    try:
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError):
        return None
