"""Listing pages and teaser boxes.

A page of teasers (a blog's month archive or front page, a press room's list of releases, a
municipal news list) is not a document: extraction returns its links, and the batch queues
them instead of storing the page. A document page keeps only its own text, without the teasers
of other posts shown below or beside it. The pages in ``tests/fixtures/listing/`` are shaped
like those of the CMSs the sources run on.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from annotators import RecordingAnnotator
from click.testing import CliRunner
from sites import LocalSite

from pipeline.batch import Batch
from pipeline.cli import cli
from pipeline.config import Selectors, parse_sources
from pipeline.extract import Extracted, Listing, extract_page
from pipeline.store.db import open_db

FIXTURES = Path(__file__).parent / "fixtures" / "listing"


def _page(name: str, url: str) -> Extracted | Listing:
    return extract_page((FIXTURES / f"{name}.html").read_text(encoding="utf-8"), url)


# --------------------------------------------------------------------------- listings


def test_a_wordpress_month_archive_is_a_listing_of_its_posts_and_next_page():
    result = _page("wordpress_manadsarkiv", "https://trapphusbloggen.example/2019/04/")
    assert isinstance(result, Listing)
    assert result.links == (
        "https://trapphusbloggen.example/2019/04/gardsfesten-som-blev-en-tradition/",
        "https://trapphusbloggen.example/2019/04/nar-hissen-stod-still-i-tre-veckor/",
        "https://trapphusbloggen.example/2019/04/odlingslador-pa-taket/",
        "https://trapphusbloggen.example/2019/04/page/2/",
    )
    assert result.title == "Månad: april 2019"


def test_a_press_room_list_of_linked_cards_is_a_listing():
    url = "https://www.mynewsdesk.com/se/hgf-vastra-sverige/pressreleases"
    result = _page("mynewsdesk_pressmeddelanden", url)
    assert isinstance(result, Listing)
    assert len(result.links) == 5
    assert result.links[0] == (
        f"{url}/hyresgaestfoereningen-oeppnar-raadgivning-om-andrahandskontrakt-i-goeteborg-3250411"
    )
    assert result.links[-1] == f"{url}?page=2", "the next page is crawled as well"


def test_a_municipal_news_list_without_headings_is_a_listing():
    result = _page("sitevision_nyhetslista", "https://www.gavle.example/nyheter.html")
    assert isinstance(result, Listing)
    assert [link.rsplit("/", 1)[1] for link in result.links] == [
        "2020-02-06-nytt-stod-till-hushall-som-riskerar-att-forlora-sin-bostad.html",
        "2020-02-04-ny-fritidsgard-i-andersberg.html",
        "2020-01-28-snoskottning-for-aldre.html",
        "2020-01-20-budget-och-skuldradgivning.html",
    ]


def test_a_front_page_showing_the_newest_post_in_full_is_a_listing_including_that_post():
    # The full post's headline links to its own page: that page is the document, not this one,
    # whose content changes with every new post.
    result = _page("blogg_startsida_senaste_i_sin_helhet", "https://bostadslotsen.example/")
    assert isinstance(result, Listing)
    assert result.links[0] == (
        "https://bostadslotsen.example/2020/05/boendestod-som-faktiskt-nar-fram/"
    )
    assert len(result.links) == 4


def test_a_body_selector_that_also_matches_excerpts_does_not_hide_a_listing():
    # Many WordPress themes use .entry-content for a post's text and for archive excerpts.
    selectors = Selectors(body=".entry-content")
    html = (FIXTURES / "wordpress_manadsarkiv.html").read_text(encoding="utf-8")
    result = extract_page(html, "https://trapphusbloggen.example/2019/04/", selectors)
    assert isinstance(result, Listing)


def test_text_found_by_the_sources_body_selector_makes_a_page_a_document():
    selectors = Selectors(body=".widget-area .textwidget")
    html = (FIXTURES / "wordpress_manadsarkiv.html").read_text(encoding="utf-8")
    result = extract_page(html, "https://trapphusbloggen.example/2019/04/", selectors)
    assert isinstance(result, Extracted)
    assert result.text.startswith("Trapphusbloggen skrivs av hyresgäster och medarbetare")


# --------------------------------------------------------------------------- documents


def test_a_post_keeps_only_its_own_text_without_the_teasers_below_and_beside_it():
    url = "https://grannskapsnatet.example/2021/09/trapphusmoten-pa-fem-sprak/"
    result = _page("inlagg_med_fler_inlagg", url)
    assert isinstance(result, Extracted)
    assert result.title == "Trapphusmöten på fem språk"
    assert result.author == "Samir Haddad"
    paragraphs = result.text.split("\n\n")
    assert paragraphs[0].startswith("När vi bjöd in till trapphusmöte i Navestad")
    assert (
        paragraphs[-1]
        == "Nästa steg är att låta grannarna själva leda mötena, med tolk när det behövs."
    )
    for teaser in (
        "Grillkväll",
        "hundra grannar",
        "cykelverkstad",
        "Trygghet byggs",
        "Fler inlägg",
    ):
        assert teaser not in result.text


def test_a_short_news_item_with_teaser_boxes_is_still_a_document():
    result = _page("kort_nyhet_med_puffar", "https://www.ostkoping.example/nyheter/vattnet")
    assert isinstance(result, Extracted)
    assert result.text.startswith("På tisdag mellan klockan 9 och 14 stängs vattnet av")
    assert "Ny cykelbana" not in result.text and "Sportlovet" not in result.text


def test_a_headline_that_links_to_the_page_itself_is_not_a_teaser():
    canonical = "https://bostadslotsen.example/2020/02/vem-far-en-forsta-bostad/"
    teasers = "".join(
        f'<article class="post"><h2 class="entry-title"><a href="/2019/{n:02d}/inlagg-{n}/">'
        f"Inlägg nummer {n}</a></h2><p>{n} december 2019</p></article>"
        for n in (1, 2, 3)
    )
    html = (
        f"<html><head><title>Vem får en första bostad? – Bostadslotsen</title>"
        f'<link rel="canonical" href="{canonical}"></head><body><main>'
        f'<article class="post"><h2 class="entry-title"><a href="{canonical}">Vem får en första'
        " bostad?</a></h2><p>Kommunernas regler för förtur till en bostad skiljer sig mycket åt,"
        " och den som har varit hemlös länge får inte alltid gå före i kön. Vi har jämfört tio"
        " kommuners regler och ringt deras bostadsförmedlingar för att höra hur de tillämpas i"
        " praktiken.</p></article>"
        f"{teasers}</main></body></html>"
    )
    result = extract_page(html, "https://bostadslotsen.example/2020/02/vem-far-en-forsta-bostad")
    assert isinstance(result, Extracted)
    assert result.title == "Vem får en första bostad?"
    assert result.text.startswith("Kommunernas regler för förtur")
    assert "Inlägg nummer" not in result.text


def test_linked_reports_between_paragraphs_of_a_release_stay_in_its_text():
    reports = "".join(
        f'<h3><a href="/rapporter/{slug}.pdf">{title}</a></h3><p>{text}</p>'
        for slug, title, text in (
            ("boende", "Rapport: Boende för unga vuxna", "Kartläggning av 40 kommuner, 2023."),
            ("kö", "Rapport: Bostadskön och nyanlända", "Intervjuer med 120 bostadssökande."),
            ("hyror", "Rapport: Hyror efter renovering", "Uppföljning av 12 ombyggnader."),
        )
    )
    html = (
        '<html><head><meta property="og:type" content="article"></head><body><article>'
        "<h1>Tre nya rapporter om bostadsförsörjning</h1><div class='release-body'>"
        "<p>Boverket publicerar i dag tre rapporter som tillsammans ger en bild av hur svårt det"
        " är för unga och nyanlända att hitta en bostad med förstahandskontrakt.</p>"
        f"{reports}<p>Rapporterna presenteras på ett seminarium i Karlskrona den 4 juni, där"
        " kommuner och bostadsbolag diskuterar vad som behöver göras.</p>"
        "</div></article></body></html>"
    )
    result = extract_page(html, "https://www.boverket.example/press/tre-nya-rapporter")
    assert isinstance(result, Extracted)
    assert "Rapport: Bostadskön och nyanlända" in result.text.split("\n\n")
    assert result.text.endswith("diskuterar vad som behöver göras.")


# --------------------------------------------------------------------------- the CLI


def test_pipeline_extract_prints_a_listings_links():
    url = "https://trapphusbloggen.example/2019/04/"
    path = str(FIXTURES / "wordpress_manadsarkiv.html")
    result = CliRunner().invoke(cli, ["extract", path, "--url", url])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["listing"] is True
    assert printed["links"][0] == f"{url}gardsfesten-som-blev-en-tradition/"


# --------------------------------------------------------------------------- the batch


POST = """<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8">
<title>{title} – Trapphusbloggen</title><meta property="og:type" content="article"></head>
<body><header class="site-header"><a href="/">Trapphusbloggen</a></header>
<main><article class="post"><h1 class="entry-title">{title}</h1>
<p class="byline">av <a rel="author" href="/author/mikael/">Mikael Strand</a></p>
<time class="entry-date published" datetime="2019-04-{day}T10:00:00+02:00">{day} april 2019</time>
<div class="entry-content"><p>{text}</p><p>Vi fortsätter att berätta om livet i kvarteret
här på bloggen, och tar gärna emot tips från grannar som vill dela med sig.</p></div>
</article></main><footer>© Trapphusbloggen</footer></body></html>"""


def _blog(site: LocalSite) -> None:
    archive = (FIXTURES / "wordpress_manadsarkiv.html").read_text(encoding="utf-8")
    site.page("/2019/04/", archive)
    posts = {
        "gardsfesten-som-blev-en-tradition": ("Gårdsfesten som blev en tradition", "28"),
        "nar-hissen-stod-still-i-tre-veckor": ("När hissen stod still i tre veckor", "17"),
        "odlingslador-pa-taket": ("Odlingslådor på taket", "08"),
    }
    for slug, (title, day) in posts.items():
        text = f"{title}: så här gick det till när grannarna tog saken i egna händer i april."
        site.page(f"/2019/04/{slug}/", POST.format(title=title, day=day, text=text))
    sitemap = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{site.url('/2019/04/')}</loc></url></urlset>"
    )
    site.page("/sitemap.xml", sitemap, "application/xml")


def test_the_batch_queues_a_listings_posts_instead_of_storing_it(tmp_path: Path):
    with LocalSite() as site:
        _blog(site)
        config = parse_sources(
            "defaults:\n  delay: 0\n  retries: 0\nsources:\n"
            "  - id: trapphus\n    name: Trapphusbloggen\n    kind: blog_post\n"
            "    hosts: [127.0.0.1]\n    paths: ['^/20\\d\\d/']\n"
            f"    discover:\n      - sitemap: {site.url('/sitemap.xml')}\n",
            tmp_path / "sources.yaml",
        )

        def run():
            return Batch(
                config,
                db_path=tmp_path / "pipeline.db",
                warc_dir=tmp_path / "warc",
                annotator=RecordingAnnotator(),  # type: ignore[arg-type]
            ).run()

        first = run()
        db = open_db(tmp_path / "pipeline.db")
        assert first.documents == 0, "the month archive is not stored as a document"
        queued = [
            urlsplit(row[0]).path
            for row in db.conn.execute("SELECT url FROM pages WHERE role = 'document'")
        ]
        assert sorted(queued) == [
            "/2019/04",
            "/2019/04/gardsfesten-som-blev-en-tradition",
            "/2019/04/nar-hissen-stod-still-i-tre-veckor",
            "/2019/04/odlingslador-pa-taket",
        ]
        assert first.counts["discovered"] >= 4

        second = run()
        titles = sorted(row[0] for row in db.conn.execute("SELECT title FROM documents"))
        db.close()
    assert second.counts["new"] == 3
    assert titles == [
        "Gårdsfesten som blev en tradition",
        "När hissen stod still i tre veckor",
        "Odlingslådor på taket",
    ]
    assert len(site.hits("/2019/04/")) == 1, "the archive is not due again before its interval"
