"""A small Swedish press room on a :class:`~sites.LocalSite`, and the ways a server misbehaves.

:class:`PressRoom` publishes healthy press releases under ``/pm/<slug>`` with an RSS feed, a
sitemap and a paginated listing, so that a batch has something to store around the page that
misbehaves. The functions below build the misbehaviour itself, as :class:`~sites.Reply` objects
or request handlers for :meth:`LocalSite.route`: errors, slow and trickling bodies, dropped
connections, huge and binary bodies, wrong charsets, redirect loops, endless listings, malformed
and hostile XML, and pages that change on every request.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from html import escape

from sites import LocalSite, Reply, Request

HTML = "text/html; charset=utf-8"

RELEASES = {
    "renovering": (
        "Hyresgästföreningen kräver stopp för renovräkningar i Rosengård",
        "Hyresgästföreningen region Skåne kräver att Malmö stad ställer krav på fastighets"
        "ägarna i Rosengård innan fler hus renoveras med hyreshöjningar på upp till sextio "
        "procent. Många hushåll har bott i området i över tjugo år och har inte råd att bo "
        "kvar efter renoveringen.",
    ),
    "byggande": (
        "Bostadsbyggandet i Skåne väntas halveras nästa år",
        "Fastighetsägarna Syd bedömer att antalet påbörjade hyresrätter i Skåne halveras "
        "jämfört med förra året, främst på grund av höga räntor och byggkostnader. Störst "
        "blir nedgången i Lund och Helsingborg, där flera projekt har pausats.",
    ),
    "ungdomsboende": (
        "Nytt boende för unga nyanlända öppnar i Norrköping",
        "Hyresbostäder i Norrköping öppnar i augusti ett boende med trettio lägenheter för "
        "unga nyanlända mellan arton och tjugofem år i stadsdelen Hageby. Boendet drivs "
        "tillsammans med Norrköpings kommun och föreningen Refugees Welcome Sweden.",
    ),
    "hemloshet": (
        "Stadsmissionen: fler barnfamiljer söker akut boende i Göteborg",
        "Göteborgs Stadsmission har under hösten tagit emot dubbelt så många barnfamiljer "
        "som söker akut boende som samma period förra året. Många har fått sin "
        "försörjningsstöd sänkt och har vräkts efter hyresskulder.",
    ),
}


def release_page(title: str, text: str, *, extra: str = "", furniture: str = "") -> str:
    """A press-room page: navigation, the release, and a footer (``furniture`` goes there)."""
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in (text, extra) if p)
    return (
        f'<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8"><title>{escape(title)}'
        ' | Pressrum</title></head><body><nav class="site-nav"><a href="/">Start</a> '
        '<a href="/pm/">Pressmeddelanden</a></nav><article class="release">'
        f'<h1>{escape(title)}</h1><p class="release-date">Publicerad 12 mars 2024</p>'
        f'<div class="release-body">{paragraphs}</div></article>'
        f"<footer>Pressrum för bostadsfrågor · press@pressrum.example {furniture}</footer>"
        "</body></html>"
    )


def rss(links: list[str]) -> str:
    items = "".join(f"<item><title>Nyhet</title><link>{escape(u)}</link></item>" for u in links)
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Pressrum'
        f"</title><link>http://127.0.0.1/</link>{items}</channel></rss>"
    )


def sitemap(links: list[str]) -> str:
    urls = "".join(f"<url><loc>{escape(u)}</loc></url>" for u in links)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    )


class PressRoom:
    """Healthy releases on a running :class:`LocalSite`, found through feed and sitemap."""

    def __init__(self, site: LocalSite, slugs: list[str] | None = None):
        self.site = site
        self.slugs = list(slugs if slugs is not None else ["renovering", "byggande"])
        for slug in self.slugs:
            title, text = RELEASES[slug]
            site.page(f"/pm/{slug}", release_page(title, text))

    def url(self, slug: str) -> str:
        return self.site.url(f"/pm/{slug}")

    def publish(self, *extra_slugs: str) -> list[str]:
        """Feed and sitemap listing the healthy releases and ``extra_slugs``; their URLs."""
        links = [self.url(slug) for slug in [*self.slugs, *extra_slugs]]
        self.site.page("/rss.xml", rss(links), "application/rss+xml")
        self.site.page("/sitemap.xml", sitemap(links), "application/xml")
        return links


# --------------------------------------------------------------------------- misbehaviour


def trickle(body: bytes, *, chunk: int = 64, pause: float = 0.2) -> Reply:
    """A 200 whose body arrives ``chunk`` bytes at a time with ``pause`` seconds in between."""

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), chunk):
            time.sleep(pause)
            yield body[start : start + chunk]

    return Reply(200, chunks(), {"Content-Type": HTML})


def dropped_mid_body(body: bytes) -> Reply:
    """Announces the whole body, sends a third of it and closes the connection."""
    return Reply(
        200, body[: len(body) // 3], {"Content-Type": HTML, "Content-Length": str(len(body))}
    )


def endless(megabytes: int, *, announce: bool = False) -> Reply:
    """``megabytes`` MB of HTML-looking text, streamed (or announced up front)."""
    block = b"<p>" + b"Hyresgaster i Malmo " * 52_000 + b"</p>\n"  # about 1 MB

    def chunks() -> Iterator[bytes]:
        for _ in range(megabytes):
            yield block

    headers = {"Content-Type": HTML}
    if announce:
        headers["Content-Length"] = str(len(block) * megabytes)
    return Reply(200, chunks(), headers)


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", {"Location": location})


def endless_listing(site: LocalSite, links_per_page: int = 2) -> Callable[[Request], Reply]:
    """A listing whose "next page" link never runs out (``/pm/?sida=N`` → ``N + 1``)."""

    def handle(request: Request) -> Reply:
        number = int(request.path.rsplit("=", 1)[1]) if "sida=" in request.path else 1
        links = "".join(
            f'<li><a class="item" href="/pm/sida{number}-nyhet{i}">Nyhet {i}</a></li>'
            for i in range(links_per_page)
        )
        body = (
            f"<html><body><h1>Pressmeddelanden, sida {number}</h1><ul>{links}</ul>"
            f'<a rel="next" href="/pm/?sida={number + 1}">Nästa sida</a></body></html>'
        )
        return Reply(200, body, {"Content-Type": HTML})

    return handle


def changing_every_request(title: str, text: str, *, in_text: bool) -> Callable[[Request], Reply]:
    """A page that differs on every request: a counter in the footer (``in_text`` False, as
    a CMS's cache-busting token) or in the release text itself."""
    counter = itertools.count(1)

    def handle(request: Request) -> Reply:
        number = next(counter)
        extra = f"Uppdatering nummer {number} av pressmeddelandet." if in_text else ""
        furniture = "" if in_text else f'<span class="token">sid-{number:08d}</span>'
        return Reply(
            200, release_page(title, text, extra=extra, furniture=furniture), {"Content-Type": HTML}
        )

    return handle


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title></channel></rss>
"""
"""The classic entity-expansion bomb: a few hundred bytes that expand to about 3 GB."""

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
