"""Discovery: feeds, sitemaps and listing pages as Swedish press rooms and blogs publish them."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import pytest
from sites import LocalSite, Reply

from pipeline.config import CrawlSettings
from pipeline.crawl.discover import (
    MAX_SITEMAP_BYTES,
    DiscoveryError,
    Link,
    parse_feed,
    parse_listing,
    parse_sitemap,
)
from pipeline.crawl.fetch import Fetcher

PRESSROOM = "https://www.mynewsdesk.com/se/hyresgastforeningen"

MYNEWSDESK_RSS = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>Hyresgästföreningen - Pressmeddelanden</title>
    <link>{PRESSROOM}</link>
    <atom:link href="{PRESSROOM}/rss" rel="self" type="application/rss+xml"/>
    <description>Nyheter från Hyresgästföreningen</description>
    <language>sv</language>
    <item>
      <title>Trångboddheten ökar i Malmö och Göteborg</title>
      <link>{PRESSROOM}/pressreleases/trangboddheten-oekar-i-malmoe-och-goeteborg-3245001?utm_source=rss&amp;utm_medium=rss&amp;utm_campaign=Prenumeration</link>
      <description><![CDATA[<p>Allt fler bor trångt, visar en ny rapport.</p>]]></description>
      <pubDate>Fri, 26 May 2023 05:15:00 +0200</pubDate>
      <guid isPermaLink="false">3245001</guid>
      <dc:creator>Hyresgästföreningen</dc:creator>
    </item>
    <item>
      <title>Hyresgäster på Råby bjuder in till boendedialog</title>
      <link>{PRESSROOM}/pressreleases/hyresgaester-paa-raaby-bjuder-in-till-boendedialog-3244870</link>
      <pubDate>Wed, 24 May 2023 09:00:00 +0200</pubDate>
    </item>
    <item>
      <title>Trångboddheten ökar i Malmö och Göteborg</title>
      <link>{PRESSROOM}/pressreleases/trangboddheten-oekar-i-malmoe-och-goeteborg-3245001</link>
      <pubDate>Fri, 26 May 2023 05:15:00 +0200</pubDate>
    </item>
    <item>
      <title>Nyhetsbrev maj</title>
      <guid>{PRESSROOM}/news/nyhetsbrev-maj-2023</guid>
      <pubDate>inte ett datum</pubDate>
    </item>
  </channel>
</rss>""".encode()

MUNICIPAL_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="sv">
  <title>Nyheter - Botkyrka kommun</title>
  <id>tag:botkyrka.se,2024:nyheter</id>
  <updated>2024-03-05T10:00:00+01:00</updated>
  <entry>
    <title type="html">Ny mötesplats för nyanlända i Fittja</title>
    <link rel="edit" href="/api/nyheter/4411"/>
    <link rel="alternate" type="text/html"
          href="/nyheter/2024-03-05-ny-motesplats-for-nyanlanda-i-fittja.html"/>
    <id>tag:botkyrka.se,2024:4411</id>
    <published>2024-03-04T08:00:00+01:00</published>
    <updated>2024-03-05T09:30:00+01:00</updated>
  </entry>
  <entry>
    <title>Samverkan mot hemlöshet i Alby</title>
    <link href="https://www.botkyrka.se/nyheter/2024-02-28-samverkan-mot-hemloshet-i-alby.html"/>
    <id>tag:botkyrka.se,2024:4398</id>
    <published>2024-02-28T13:45:00Z</published>
  </entry>
</feed>""".encode()

WORDPRESS_SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="//bloggen.example.se/wp-content/plugins/sitemap.xsl"?>
<urlset xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"
        xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url>
    <loc>https://bloggen.example.se/2024/03/integration-borjar-i-trapphuset/</loc>
    <lastmod>2024-03-05T09:30:12+00:00</lastmod>
    <image:image><image:loc>https://bloggen.example.se/wp-content/uploads/trapphus.jpg</image:loc></image:image>
  </url>
  <url>
    <loc>
      https://bloggen.example.se/2024/02/sa-motverkar-vi-segregation-i-husby/
    </loc>
    <lastmod>2024-02-12</lastmod>
  </url>
  <url><loc>https://bloggen.example.se/om-oss/</loc></url>
</urlset>"""

SITEMAP_INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://bloggen.example.se/post-sitemap.xml</loc>
    <lastmod>2024-03-05T09:30:12+00:00</lastmod></sitemap>
  <sitemap><loc>https://bloggen.example.se/page-sitemap.xml</loc></sitemap>
  <sitemap><loc>/category-sitemap.xml</loc></sitemap>
</sitemapindex>"""

LISTING = """<!doctype html><html lang="sv"><head><title>Nyheter - Örebro kommun</title></head>
<body>
<nav><a href="/">Startsida</a> <a href="/kontakt.html">Kontakt</a></nav>
<ul class="sv-news-list">
  <li class="news-item"><span class="tag"><a href="/nyheter/kategori/bostad">Bostad</a></span>
    <h2><a href="/nyheter/2024-03-01-vasthaga-far-ny-fritidsgard.html">
      Vivalla och Västhaga får ny
      fritidsgård</a></h2></li>
  <li class="news-item"><h2>
    <a href="2024-02-27-sprakcafe-for-nyanlanda.html">Språkcafé för nyanlända</a></h2></li>
  <li class="news-item"><h2>
    <a href="/nyheter/2024-03-01-vasthaga-far-ny-fritidsgard.html#kommentarer">
      Vivalla och Västhaga får ny fritidsgård</a></h2></li>
  <li class="news-item"><p>Inga länkar här</p></li>
</ul>
<a href="mailto:kommunikation@orebro.se">Mejla oss</a>
<div class="pagination"><a href="?sida=1" class="current">1</a>
  <a href="?sida=2" class="next" rel="next">Nästa sida</a></div>
</body></html>"""
LISTING_URL = "https://www.orebro.se/nyheter"


# --------------------------------------------------------------------------- feeds


def test_mynewsdesk_rss_gives_unique_links_with_dates_and_titles() -> None:
    links = parse_feed(MYNEWSDESK_RSS, f"{PRESSROOM}/rss")
    release = f"{PRESSROOM}/pressreleases/trangboddheten-oekar-i-malmoe-och-goeteborg-3245001"
    assert links == [
        # the link as published; the later copy without tracking parameters is a duplicate
        Link(
            f"{release}?utm_source=rss&utm_medium=rss&utm_campaign=Prenumeration",
            "2023-05-26T05:15:00+02:00",
            "Trångboddheten ökar i Malmö och Göteborg",
        ),
        Link(
            f"{PRESSROOM}/pressreleases/hyresgaester-paa-raaby-bjuder-in-till-boendedialog-3244870",
            "2023-05-24T09:00:00+02:00",
            "Hyresgäster på Råby bjuder in till boendedialog",
        ),
        Link(f"{PRESSROOM}/news/nyhetsbrev-maj-2023", None, "Nyhetsbrev maj"),
    ]


def test_atom_entries_use_the_alternate_link_resolved_against_the_feed() -> None:
    links = parse_feed(MUNICIPAL_ATOM, "https://www.botkyrka.se/nyheter/atom.xml")
    assert [link.url for link in links] == [
        "https://www.botkyrka.se/nyheter/2024-03-05-ny-motesplats-for-nyanlanda-i-fittja.html",
        "https://www.botkyrka.se/nyheter/2024-02-28-samverkan-mot-hemloshet-i-alby.html",
    ]
    assert [link.lastmod for link in links] == [
        "2024-03-05T09:30:00+01:00",
        "2024-02-28T13:45:00+00:00",
    ]
    assert links[0].title == "Ny mötesplats för nyanlända i Fittja"


def test_a_feed_fetched_from_a_server_is_parsed_from_its_bytes() -> None:
    settings = CrawlSettings("svpipeline-test/0.1", 2.0, 200_000, 0, 0.0)
    with LocalSite() as site, Fetcher(settings) as fetcher:
        site.route("/rss", Reply(200, MYNEWSDESK_RSS, {"Content-Type": "application/rss+xml"}))
        result = fetcher.fetch(site.url("/rss"), allowed_hosts=[site.host])
    assert result.ok
    assert len(parse_feed(result.body, result.final_url)) == 3


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><item><title>&lol9;</title><link>https://example.se/a</link></item></channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<urlset><url><loc>https://example.se/&secret;</loc></url></urlset>"""


def test_an_entity_expansion_bomb_is_refused_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(DiscoveryError, match="unsafe XML in the feed"):
        parse_feed(BILLION_LAUGHS, "https://example.se/rss")
    assert time.monotonic() - started < 1.0


def test_external_entities_are_refused() -> None:
    with pytest.raises(DiscoveryError, match="unsafe XML in the sitemap"):
        parse_sitemap(EXTERNAL_ENTITY, "https://example.se/sitemap.xml")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (MYNEWSDESK_RSS[:600], "the feed is not well-formed XML"),
        (b"<!doctype html><html><body><p>Sidan finns inte</body></html>", "not well-formed"),
        (b"<html><body><p>Sidan finns inte</p></body></html>", "document element is <html>"),
        (b"", "not well-formed"),
    ],
)
def test_malformed_feeds_raise_a_readable_error(body: bytes, message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        parse_feed(body, "https://example.se/rss")


# --------------------------------------------------------------------------- sitemaps


def test_wordpress_sitemap_gives_urls_as_published_with_lastmod() -> None:
    links, children = parse_sitemap(
        WORDPRESS_SITEMAP, "https://bloggen.example.se/post-sitemap.xml"
    )
    assert children == []
    assert links == [
        Link(
            "https://bloggen.example.se/2024/03/integration-borjar-i-trapphuset/",
            "2024-03-05T09:30:12+00:00",
        ),
        Link(
            "https://bloggen.example.se/2024/02/sa-motverkar-vi-segregation-i-husby/",
            "2024-02-12",
        ),
        Link("https://bloggen.example.se/om-oss/"),
    ]


def test_sitemap_index_lists_child_sitemaps() -> None:
    links, children = parse_sitemap(SITEMAP_INDEX, "https://bloggen.example.se/sitemap_index.xml")
    assert links == []
    assert children == [
        "https://bloggen.example.se/post-sitemap.xml",
        "https://bloggen.example.se/page-sitemap.xml",
        "https://bloggen.example.se/category-sitemap.xml",
    ]


def test_sitemaps_without_namespace_and_gzip_compressed_are_accepted() -> None:
    bare = b"<urlset><url><loc>https://www.malmo.se/nyheter/a</loc><lastmod>2024-01-02</lastmod></url></urlset>"
    assert parse_sitemap(bare, "https://www.malmo.se/sitemap.xml")[0] == [
        Link("https://www.malmo.se/nyheter/a", "2024-01-02")
    ]
    compressed = gzip.compress(WORDPRESS_SITEMAP)
    assert parse_sitemap(compressed, "https://bloggen.example.se/sitemap.xml.gz") == parse_sitemap(
        WORDPRESS_SITEMAP, "https://bloggen.example.se/sitemap.xml"
    )


def test_plain_text_sitemaps_are_accepted() -> None:
    text = b"https://www.malmo.se/nyheter/a\nhttps://www.malmo.se/nyheter/b\n"
    links, _ = parse_sitemap(text, "https://www.malmo.se/sitemap.txt")
    assert [link.url for link in links] == [
        "https://www.malmo.se/nyheter/a",
        "https://www.malmo.se/nyheter/b",
    ]


def test_a_gzip_bomb_sitemap_is_refused() -> None:
    bomb = gzip.compress(b" " * (MAX_SITEMAP_BYTES + 1024), compresslevel=1)
    with pytest.raises(DiscoveryError, match="larger than"):
        parse_sitemap(bomb, "https://example.se/sitemap.xml.gz")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<rss version='2.0'><channel/></rss>", "not a sitemap: the document element is <rss>"),
        (b"\x1f\x8b\x08\x00trasig", "corrupt gzip"),
        (b"Sidan kunde inte hittas", "neither XML nor a list of URLs"),
        (b"<urlset><url><loc>https://example.se/a</loc></url>", "not well-formed"),
    ],
)
def test_broken_sitemaps_raise_a_readable_error(body: bytes, message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        parse_sitemap(body, "https://example.se/sitemap.xml")


# --------------------------------------------------------------------------- listing pages


def test_listing_selector_gives_absolute_unique_links_in_page_order() -> None:
    links, next_page = parse_listing(LISTING, LISTING_URL, "li.news-item h2", ".pagination a.next")
    assert links == [
        Link(
            "https://www.orebro.se/nyheter/2024-03-01-vasthaga-far-ny-fritidsgard.html",
            title="Vivalla och Västhaga får ny fritidsgård",
        ),
        Link(
            "https://www.orebro.se/2024-02-27-sprakcafe-for-nyanlanda.html",
            title="Språkcafé för nyanlända",
        ),
    ]
    assert next_page == "https://www.orebro.se/nyheter?sida=2"


def test_a_selected_card_stands_for_its_first_link() -> None:
    links, _ = parse_listing(LISTING, LISTING_URL, "li.news-item", None)
    assert [link.url for link in links] == [
        "https://www.orebro.se/nyheter/kategori/bostad",
        "https://www.orebro.se/2024-02-27-sprakcafe-for-nyanlanda.html",
        "https://www.orebro.se/nyheter/2024-03-01-vasthaga-far-ny-fritidsgard.html",
    ]


def test_without_a_selector_every_http_link_is_returned() -> None:
    links, next_page = parse_listing(LISTING, LISTING_URL, None, None)
    urls = [link.url for link in links]
    assert urls[:2] == ["https://www.orebro.se/", "https://www.orebro.se/kontakt.html"]
    assert "https://www.orebro.se/nyheter?sida=2" in urls
    assert not any(url.startswith("mailto:") for url in urls)
    assert len(urls) == len(set(urls)) == 7
    assert next_page is None


def test_base_element_and_last_page_are_respected() -> None:
    html = """<html><head><base href="https://www.hyresgastforeningen.se/aktuellt/"></head><body>
      <a class="puff" href="pressmeddelanden/hemloshet-2024">Hemlöshet 2024</a>
      <a class="next" href="https://www.hyresgastforeningen.se/aktuellt?sida=3">Nästa</a></body></html>"""
    page_url = "https://www.hyresgastforeningen.se/aktuellt?sida=3"
    links, next_page = parse_listing(html, page_url, "a.puff", "a.next")
    assert (
        links[0].url
        == "https://www.hyresgastforeningen.se/aktuellt/pressmeddelanden/hemloshet-2024"
    )
    assert next_page is None  # "next" points back at this page: the last page


def test_an_invalid_selector_is_a_discovery_error() -> None:
    with pytest.raises(DiscoveryError, match=r"invalid CSS selector 'li\.\.news'"):
        parse_listing(LISTING, LISTING_URL, "li..news", None)


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


def test_listing_pages_can_be_followed_to_the_end(site: LocalSite) -> None:
    for number in (1, 2, 3):
        following = (
            f'<a class="next" href="/nyheter?sida={number + 1}">Nästa</a>' if number < 3 else ""
        )
        html = f'<ul><li><a class="n" href="/nyheter/{number}-a">A</a></li></ul>{following}'
        site.route(f"/nyheter?sida={number}", Reply(200, html, {"Content-Type": "text/html"}))
    settings = CrawlSettings("svpipeline-test/0.1", 2.0, 200_000, 0, 0.0)
    found: list[str] = []
    url: str | None = site.url("/nyheter?sida=1")
    with Fetcher(settings) as fetcher:
        while url:
            result = fetcher.fetch(url, allowed_hosts=[site.host])
            links, url = parse_listing(result.text or "", result.final_url, "a.n", "a.next")
            found += [link.url for link in links]
    assert found == [site.url(f"/nyheter/{n}-a") for n in (1, 2, 3)]
