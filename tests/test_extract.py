"""Extraction from whole pages: saved Swedish press releases, blog posts, municipal news and
government press releases (``tests/fixtures/extract/``), each wrapped in the navigation, cookie
banners, share buttons, related-links boxes, comments and footers of its kind of site."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from pipeline.config import Selectors
from pipeline.extract import Contact, Extracted, ExtractionError, extract
from pipeline.extract import page as page_module
from pipeline.extract import text as text_module
from pipeline.extract.contacts import find_phone
from pipeline.extract.metadata import detect_language

FIXTURES = Path(__file__).parent / "fixtures" / "extract"
FETCHED = datetime(2024, 3, 12, 8, 0, tzinfo=UTC)

#: Strings from the furniture around every fixture; none may reach the main text.
BOILERPLATE = (
    "kakor",
    "cookies",
    "Godkänn",
    "Relaterade",
    "Relaterat",
    "Dela",
    "Läs mer om",
    "Lämna ett svar",
    "kommentar",
    "Senaste",
    "Prenumerera",
    "Hoppa till",
    "Startsida",
    "Om oss",
    "Integritetspolicy",
)


@dataclass(frozen=True)
class Page:
    """What a person reading the fixture page sees as its document."""

    fixture: str
    title: str
    published: str | None
    precision: str | None
    date_kind: str | None
    author: str | None
    kind: str | None
    language: str
    first: str
    last: str
    contacts: tuple[Contact, ...] = ()
    absent: tuple[str, ...] = ()
    paragraphs: tuple[str, ...] = field(default=())


PAGES = [
    Page(
        fixture="pressrum_pressmeddelande.html",
        title="Hyresvärdar och föreningar prövar nya sätt att motverka diskriminering",
        published="2023-05-26T05:15",
        precision="minute",
        date_kind=None,
        author=None,
        kind="press_release",
        language="sv",
        first="Fastighetsägare, hyresgäster och lokala föreningar i sydvästra Skåne har under "
        "ett år prövat metoder för en mer inkluderande hyresmarknad.",
        last="driver enskilda fall i domstol när det behövs.",
        contacts=(
            Contact(
                "Sara Lindqvist",
                "Processledare och uppdragssamordnare",
                None,
                "sara.lindqvist@adbsydvast.se",
                "040-123 45 67",
            ),
            Contact(
                "Jonas Berglund",
                "Processledare och utbildningsansvarig",
                None,
                None,
                "+46 70 123 45 67",
            ),
        ),
        absent=(
            "Södra Förstadsgatan 40",
            "Forskningscirkeln har nått halvvägs",
            "Ämnen",
            "Foto: Elin Åkesson",
            "Följ Antidiskrimineringsbyrån",
            "Drivs med Mynewsdesk",
            "040-30 12 00",
            "sara.lindqvist@adbsydvast.se",
            "2023-05-26",
        ),
        paragraphs=(
            "Fem lärdomar från arbetet",
            "Låt inte frågan vila på en enda eldsjäl utan förankra den hos ledningen.",
            "Om Antidiskrimineringsbyrån Sydväst",
        ),
    ),
    Page(
        fixture="pressrum_nyhet.html",
        title="Trygghetsvärdar på plats i Kvarnbacken året runt",
        published="2024-02-13T09:30",
        precision="minute",
        date_kind="published",
        author=None,  # JSON-LD names the company as author: not a person
        kind="news",
        language="sv",
        first="Efter ett år med sommarvärdar förlänger Bostadsbolaget Älvstaden satsningen.",
        last="Bostadsbolaget Älvstaden äger 1 100 av lägenheterna.",
        contacts=(
            Contact(
                "Maria Holm",
                "Kommunikationschef",
                "Bostadsbolaget Älvstaden AB",
                "maria.holm@alvstaden.se",
                "031-365 00 00",
            ),
            Contact("Hassan Nouri", "Områdeschef Kvarnbacken", None, None, "073-200 11 22"),
        ),
        absent=("Nyckelord", "Logga in", "Box 5102", "Nya hyresgäster välkomnas", "Maria Holm"),
        paragraphs=(
            "Det viktigaste är inte att värdarna syns, utan att de känner människorna som bor "
            "här. Det bygger förtroende åt båda hållen.",
        ),
    ),
    Page(
        fixture="blogg_wordpress_inlagg.html",
        title="Vad händer när hyresgästerna får bestämma över gården?",
        published="2019-04-25T10:12",
        precision="minute",
        date_kind="published",
        author="Karin Holm",
        kind=None,
        language="sv",
        first="I tre år har hyresgästerna på Tallbacken i Sundsvall själva fått planera om sina "
        "innergårdar.",
        last="Nästa år står två gårdar i Skönsberg på tur.",
        absent=(
            "Gunnel Ström",
            "Grillplatsen har blivit områdets bästa mötesplats",
            "Grannar som möter grannar",
            "Etiketter",
            "projektledare på Boforum Norr",
            "Storgatan 12",
            "Drivs med WordPress",
            "Trapphusmöten på fem språk",
            "Boinflytande",
        ),
        paragraphs=(
            "Så gick det till",
            "Arbetsgruppen tog fram tre förslag som alla fick rösta om.",
        ),
    ),
    Page(
        fixture="blogg_projekt_manad.html",
        title="Hemkunskap på nio språk",
        published="2017-02",
        precision="month",
        date_kind="published",
        author=None,
        kind=None,
        language="sv",
        first="Integration handlar om att förstå varandra, ta vara på människors kunskaper och "
        "ge alla samma möjligheter.",
        last="Den som känner sig hemma stannar längre och tar bättre hand om sitt boende.",
        contacts=(Contact(None, None, "Bostäder i Norrvik AB", None, "011-21 16 00"),),
        absent=("Läxhjälp i källaren", "Box 474", "011-21 16 00", "Fler goda exempel"),
        paragraphs=("hemkunskap för nyinflyttade",),
    ),
    Page(
        fixture="blogg_dagbok_signatur.html",
        title="Spännande att bli en del av innovationslabbet",
        published="2019-04-25",
        precision="day",
        date_kind=None,
        author="Sofia Lövgren",
        kind=None,
        language="sv",
        first="Med stor entusiasm har jag tagit mig an ett nytt uppdrag:",
        last="som bostadsbolag, kommuner och föreningar kan låna ur och pröva själva.",
        absent=("Lena Lindahl", "Tack till alla vardagshjältar", "nationell specialist", "Box 474"),
    ),
    Page(
        fixture="kommun_sitevision_uppdaterad.html",
        title="Fler norrvikare öppnar sina hem för nyanlända",
        published="2017-02-27T16:10",
        precision="minute",
        date_kind="updated",
        author=None,
        kind=None,
        language="sv",
        first="Ett tjugotal nya boenden har anmälts sedan Norrviks kommun och föreningen "
        "Välkomna Hem berättade om sitt samarbete i december.",
        last="efter årets slut sammanställs en rapport om hur många som har fått ett boende.",
        contacts=(
            Contact(
                "Leila Haddad",
                "Enhetschef",
                "sociala resursförvaltningen",
                "leila.haddad@norrvik.se",
                "0123-45 67 12",
            ),
        ),
        absent=(
            "Senast uppdaterad",
            "Ny mötesplats öppnar i Bergsäng",
            "Fick du den information",
            "Rådhustorget",
            "Kontaktcenter",
            "Barn och utbildning",
            "Lättläst",
            "0123-45 67 12",
        ),
        paragraphs=("Ett samarbete som ger nya möjligheter", "Fakta: Så följs arbetet upp"),
    ),
    Page(
        fixture="kommun_sitevision_publicerad.html",
        title="Bostad först-teamet summerar nätverksträffen",
        published="2020-02-06",
        precision="day",
        date_kind="published",
        author=None,
        kind=None,
        language="sv",
        first="I höstas stod Östköping värd för den nationella nätverksträffen om Bostad först.",
        last="Nästa års träff hålls i Västerby, och teamet hoppas att fler politiker deltar då.",
        contacts=(
            Contact(
                "Lars Berg",
                "samordnare för Bostad först",
                None,
                "lars.berg@ostkoping.se",
                "011-15 20 00",
            ),
        ),
        absent=(
            "För mer information",
            "Publicerad",
            "Uppdaterad",
            "Tack för ditt svar",
            "Bostad först fyller fem år",
            "Storgatan 1",
            "Hemlöshet",
            "Skriv ut",
        ),
        # trafilatura drops these interview questions; the extractor puts them back
        paragraphs=(
            "Vilka var höjdpunkterna?",
            "Vad betydde det för teamet att arrangera träffen?",
        ),
    ),
    Page(
        fixture="kommun_relativt_datum.html",
        title="Nytt språkcafé på biblioteket i Bergsäng",
        published="2024-03-11T14:32",
        precision="minute",
        date_kind="published",
        author=None,
        kind=None,
        language="sv",
        first="Från nästa vecka kan du öva svenska på biblioteket i Bergsäng varje tisdag.",
        last="fler nyanlända ska komma i kontakt med föreningslivet i Bergsäng.",
        absent=("Sommarlovsaktiviteter", "Jag förstår", "0221-190 00", "igår"),
    ),
    Page(
        fixture="regeringen_pressmeddelande.html",
        title="Uppdrag att kartlägga hemlöshet bland barnfamiljer",
        published="2023-03-28",
        precision="day",
        date_kind="published",
        author=None,
        kind="press_release",
        language="sv",
        first="Regeringen ger i dag Socialstyrelsen i uppdrag att kartlägga hur många "
        "barnfamiljer som saknar en egen bostad",
        last="Det ska redovisas till Socialdepartementet senast den 1 december 2024.",
        contacts=(
            Contact(
                "Anna Ek",
                "Pressekreterare hos bostadsminister Elin Norberg",
                None,
                "anna.ek@regeringskansliet.se",
                "076-123 45 67",
            ),
            Contact(
                "Olof Dahl",
                "Departementssekreterare",
                None,
                "olof.dahl@regeringskansliet.se",
                "+46 8 405 10 00",
            ),
        ),
        absent=(
            "Pressmeddelande från",
            "Sidan är en del av",
            "Bostadspolitik",
            "Telefonväxel",
            "Regeringens politik",
            "Anna Ek",
            "e-post till",
        ),
        paragraphs=("beskriva kommunernas stöd till familjerna,",),
    ),
    Page(
        fixture="regeringen_debattartikel.html",
        title="”Segregationen bryts inte med fler utredningar”",
        published="2023-11-14",
        precision="day",
        date_kind="published",
        author="Elin Norberg",
        kind="opinion",
        language="sv",
        first="Kommunerna vet redan vad som behövs i de mest utsatta områdena.",
        last="Elin Norberg (M), bostadsminister",
        absent=("Debattartikel av", "Debattartikel från", "103 33 Stockholm"),
        paragraphs=("Långsiktiga avtal i stället för projektbidrag",),
    ),
    Page(
        fixture="pressrum_english.html",
        title="Tenants and landlords publish joint guide to fair letting",
        published="2023-05-26T05:15",
        precision="minute",
        date_kind=None,
        author=None,
        kind="press_release",
        language="en",
        first="For the first time, tenants' associations and property owners in southern Sweden",
        last="they plan to follow up the results together next year.",
        contacts=(
            Contact(
                "Sara Lindqvist",
                "Project manager",
                None,
                "sara.lindqvist@fairhousing.example",
                "+46 40 123 45 67",
            ),
        ),
        absent=("Accept all", "Share", "Press releases", "Södra Förstadsgatan"),
    ),
]


@cache
def extracted(fixture: str) -> Extracted:
    html = (FIXTURES / fixture).read_text(encoding="utf-8")
    return extract(html, url=f"https://example.se/{fixture}", fetched_at=FETCHED)


def _ids(pages: list[Page]) -> list[str]:
    return [p.fixture.removesuffix(".html") for p in pages]


@pytest.mark.parametrize("expected", PAGES, ids=_ids(PAGES))
def test_title_date_author_kind_and_language(expected: Page):
    result = extracted(expected.fixture)
    assert result.title == expected.title
    assert (result.published, result.date_precision, result.date_kind) == (
        expected.published,
        expected.precision,
        expected.date_kind,
    )
    assert result.author == expected.author
    assert result.kind == expected.kind
    assert result.language == expected.language


@pytest.mark.parametrize("expected", PAGES, ids=_ids(PAGES))
def test_main_text_runs_from_the_first_to_the_last_sentence(expected: Page):
    paragraphs = extracted(expected.fixture).text.split("\n\n")
    assert paragraphs[0].startswith(expected.first)
    assert paragraphs[-1].endswith(expected.last)
    for paragraph in expected.paragraphs:
        assert paragraph in paragraphs
    assert expected.title not in paragraphs


@pytest.mark.parametrize("expected", PAGES, ids=_ids(PAGES))
def test_main_text_holds_no_page_furniture(expected: Page):
    text = extracted(expected.fixture).text
    for unwanted in (*BOILERPLATE, *expected.absent):
        assert unwanted not in text, f"{unwanted!r} leaked into the text"
    assert "\n\n\n" not in text and text == text.strip()


@pytest.mark.parametrize("expected", PAGES, ids=_ids(PAGES))
def test_contacts_are_parsed_into_people(expected: Page):
    assert tuple(extracted(expected.fixture).contacts) == expected.contacts


def test_to_dict_is_plain_json():
    data = extracted("pressrum_pressmeddelande.html").to_dict()
    restored = json.loads(json.dumps(data, ensure_ascii=False))
    assert restored["contacts"][0]["email"] == "sara.lindqvist@adbsydvast.se"
    assert restored["published"] == "2023-05-26T05:15"
    assert set(restored) >= {"title", "date_precision", "date_kind", "text", "language", "kind"}


def test_a_site_name_in_h1_is_not_the_title():
    html = (
        "<html><head><title>Grannar som möter grannar – Boforum Norr</title>"
        '<meta property="og:site_name" content="Boforum Norr"></head><body>'
        '<header><h1 class="site-title"><a href="/">Boforum Norr</a></h1></header>'
        '<div class="post"><h2 class="entry-title">Grannar som möter grannar</h2>'
        "<p>I höstas började vi bjuda in till trapphusmöten i Skönsberg, och nu har över hundra "
        "hushåll varit med på minst ett möte.</p></div></body></html>"
    )
    assert extract(html).title == "Grannar som möter grannar"


def test_an_author_class_on_the_body_is_not_a_byline():
    # WordPress marks author archives with <body class="archive author">
    html = (
        '<html><body class="archive author"><main><h1>Författare: Karin Holm</h1>'
        '<article><p class="byline">av <a rel="author" href="/k">Karin Holm</a></p>'
        "<p>En vräkning drabbar inte bara den som förlorar sin bostad. I vår samlade labbet "
        "bolagen för att jämföra hur de arbetar för att förebygga vräkningar.</p></article>"
        "</main></body></html>"
    )
    result = extract(html)
    assert result.author == "Karin Holm"
    assert result.text.startswith("En vräkning drabbar inte bara den som förlorar sin bostad.")


def test_a_layout_wrapper_named_after_its_sidebar_is_not_a_sidebar():
    # "has-sidebar" describes the wrapper of article and sidebar, which must not be dropped with
    # the sidebar, even when the theme gives the headline an <h2>.
    html = (
        "<html><head><title>Grannar som möter grannar – Boforum Norr</title></head><body>"
        '<div class="site-content has-sidebar"><div class="post">'
        "<h2>Grannar som möter grannar</h2><p>I höstas började vi bjuda in till trapphusmöten"
        " i Skönsberg, och nu har över hundra hushåll varit med på minst ett möte.</p></div>"
        '<div class="sidebar-column"><p>Boforum Norr är ett nätverk för hyresgäster i Norrland'
        " som vill påverka sitt boende.</p></div></div></body></html>"
    )
    result = extract(html)
    assert result.title == "Grannar som möter grannar"
    assert result.text.startswith("I höstas började vi bjuda in till trapphusmöten")
    assert "nätverk för hyresgäster" not in result.text


# --------------------------------------------------------------------------- selectors


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_the_sources_body_selector_replaces_generic_extraction():
    selectors = Selectors(body=".release__body", remove=(".release__body ul",))
    result = extract(_fixture("pressrum_pressmeddelande.html"), selectors=selectors)
    paragraphs = result.text.split("\n\n")
    assert paragraphs[0].startswith("Sedan förra våren har sju organisationer")
    assert paragraphs[-1].endswith("Myndigheten för ungdoms- och civilsamhällesfrågor, MUCF.")
    assert "Bjud in boende" not in result.text
    assert "Om Antidiskrimineringsbyrån Sydväst" not in result.text


def test_title_and_author_selectors_win_over_the_page_structure():
    selectors = Selectors(title=".post-teaser h2", author=".post-teaser .author")
    result = extract(_fixture("blogg_dagbok_signatur.html"), selectors=selectors)
    assert result.title == "Tack till alla vardagshjältar"
    assert result.author == "Lena Lindahl"
    # the date search starts from the chosen title, so it finds that teaser's date line
    assert result.published == "2020-02-06"


def test_contacts_survive_a_remove_selector_that_hides_them_from_the_text():
    selectors = Selectors(remove=(".contact-box", ".lastmodified"))
    result = extract(_fixture("kommun_sitevision_uppdaterad.html"), selectors=selectors)
    assert [c.name for c in result.contacts] == ["Leila Haddad"]
    assert result.published is None


def test_an_invalid_css_selector_is_logged_and_ignored(caplog: pytest.LogCaptureFixture):
    selectors = Selectors(body="div[[", date="::nonsense(")
    with caplog.at_level(logging.WARNING, logger="pipeline.extract.page"):
        result = extract(_fixture("regeringen_pressmeddelande.html"), selectors=selectors)
    assert result.text.startswith("Regeringen ger i dag Socialstyrelsen")
    assert result.published == "2023-03-28"
    assert "div[[" in caplog.text


def test_when_trafilatura_finds_nothing_the_largest_block_of_paragraphs_is_used(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(text_module.trafilatura, "extract", lambda *args, **kwargs: None)
    result = extract(_fixture("regeringen_debattartikel.html"))
    paragraphs = result.text.split("\n\n")
    assert paragraphs[0].startswith("Kommunerna vet redan vad som behövs")
    assert "Långsiktiga avtal i stället för projektbidrag" in paragraphs
    assert "Sidan är en del av" not in result.text


def test_a_failing_trafilatura_does_not_fail_the_page(monkeypatch: pytest.MonkeyPatch):
    def broken(*args, **kwargs):
        raise RuntimeError("internal trafilatura error")

    monkeypatch.setattr(text_module.trafilatura, "extract", broken)
    result = extract(_fixture("blogg_wordpress_inlagg.html"))
    assert result.text.startswith("I tre år har hyresgästerna på Tallbacken")
    assert "Gunnel Ström" not in result.text


# --------------------------------------------------------------------------- contacts


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("Telefon: 040-123 45 67", "040-123 45 67"),
        ("Mobil +46 70 123 45 67", "+46 70 123 45 67"),
        ("Växel 011-21 16 00", "011-21 16 00"),
        ("tel. 08-405 10 00", "08-405 10 00"),
        ("0123-45 67 12", "0123-45 67 12"),
        ("+46 (0)40 123 45 67", "+46 (0)40 123 45 67"),
        ("Ring 0701234567", "0701234567"),
        ("Publicerad 2017-02-27 16:10", None),
        ("Box 474, 101 29 Stockholm", None),
        ("Org.nr 556012-3456", None),
        ("040-12", None),
    ],
)
def test_swedish_phone_numbers(text: str, phone: str | None):
    assert find_phone(text) == phone


def test_a_contact_line_inside_the_text_is_parsed_and_removed():
    html = (
        "<html><body><article><h1>Fler lägenheter till Bostad först</h1>"
        "<p>Bostadsbolaget ställer tio nya lägenheter till förfogande för Bostad först under "
        "året, och kommunen ansvarar för boendestödet till hyresgästerna.</p>"
        "<p>Frågor besvaras av Per Olsson, bovärd, Bostadsbolaget Söderhem, 040-628 04 19 eller "
        "per.olsson@soderhem.example.</p></article></body></html>"
    )
    result = extract(html)
    assert result.contacts == [
        Contact(
            "Per Olsson",
            "bovärd",
            "Bostadsbolaget Söderhem",
            "per.olsson@soderhem.example",
            "040-628 04 19",
        )
    ]
    assert "Per Olsson" not in result.text


def test_a_sentence_about_contact_with_a_phone_number_stays_in_the_text():
    sentence = (
        "Kontakt med hyresvärden är det första steget, och den som har frågor kan ringa "
        "bostadsrådgivningen på 040-34 10 00 alla vardagar."
    )
    html = f"<html><body><h1>Råd till hyresgäster</h1><p>{sentence}</p></body></html>"
    result = extract(html)
    assert result.contacts == []
    assert result.text == sentence


def test_a_kontakt_heading_without_contact_details_keeps_the_paragraphs_after_it():
    html = (
        "<html><body><article><h1>Så bygger vi kontakt mellan grannar</h1>"
        "<p>Många som bor i området känner inte sina grannar, och det vill föreningen ändra på.</p>"
        "<h2>Kontakt</h2><p>Första steget är att knacka dörr och bjuda in till fika på gården.</p>"
        "<p>Sedan följer en gemensam städdag där alla i trappuppgången får vara med.</p>"
        "</article></body></html>"
    )
    result = extract(html)
    assert result.contacts == []
    assert result.text.endswith("där alla i trappuppgången får vara med.")


# --------------------------------------------------------------------------- dates and language


def test_relative_dates_use_the_swedish_date_of_the_fetch():
    # 23:30 UTC on 11 March is already 12 March in Stockholm, so "igår" is 11 March
    late = datetime(2024, 3, 11, 23, 30, tzinfo=UTC)
    result = extract(_fixture("kommun_relativt_datum.html"), fetched_at=late)
    assert result.published == "2024-03-11T14:32"


def test_relative_dates_stay_unresolved_without_a_fetch_time():
    result = extract(_fixture("kommun_relativt_datum.html"))
    assert result.published is None


def test_language_comes_from_the_text_even_when_the_template_says_swedish():
    html = _fixture("pressrum_english.html").replace('<html lang="en">', '<html lang="sv">')
    assert extract(html).language == "en"


@pytest.mark.parametrize(
    ("text", "declared", "language"),
    [
        ("Hyresgästerna har själva fått bestämma hur gården ska se ut, och det är något som "
         "bolaget vill göra även i andra områden för att det ger trygghet.", None, "sv"),
        ("The landlords have agreed that the guidelines will be followed up together with the "
         "tenants, and they hope that more companies will join this year.", "sv", "en"),
        ("Lejerne har selv fået lov til at bestemme, hvordan gården skal se ud, og det er noget "
         "som selskabet også vil gøre i andre områder, fordi det ikke koster meget.", None, "da"),
        ("Leietakerne har selv fått bestemme hvordan gården skal se ut, og det er noe som "
         "selskapet også vil gjøre i andre områder, fordi det ikke koster mye.", None, "no"),
        ("Kort text", "sv", "sv"),
        ("Kort text", None, None),
    ],
)  # fmt: skip
def test_language_detection(text: str, declared: str | None, language: str | None):
    assert detect_language(text, declared) == language


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   \n\t ",
        "<html><head><title>Tom</title></head><body></body></html>",
        "<html><body><nav><a href='/'>Hem</a> <a href='/om'>Om oss</a></nav>"
        "<footer>Storgatan 1, 611 83 Östköping</footer></body></html>",
        "<div>" * 3000 + "</div>" * 3000,
    ],
    ids=["empty", "whitespace", "empty-body", "only-navigation", "deeply-nested-empty"],
)
def test_pages_without_text_raise_extraction_error(html: str):
    with pytest.raises(ExtractionError):
        extract(html, url="https://example.se/tom")


def test_binary_data_served_as_html_raises_extraction_error():
    junk = bytes((i * 7919 + 13) % 256 for i in range(6000)).decode("latin-1")
    with pytest.raises(ExtractionError, match="binary"):
        extract(junk)


def test_broken_markup_still_gives_its_text():
    html = (
        "<html><body><h1>Trasig sida<p>Det här är en trasig sida <b>utan slut<p>Andra stycket om "
        "bostäder och segregation i Malmö</div></span></td></h2><p>Tredje stycket"
    )
    result = extract(html)
    assert result.title is not None and result.title.startswith("Trasig sida")
    assert "Andra stycket om bostäder och segregation i Malmö" in result.text
    assert result.text.endswith("Tredje stycket")


def test_control_characters_and_an_xml_declaration_are_tolerated():
    html = (
        "<?xml version='1.0' encoding='iso-8859-1'?><html><body><h1>Rubrik</h1>"
        "<p>Text om hyresrätter\x00 och grannsamverkan\x0b i stadsdelen.</p></body></html>"
    )
    result = extract(html)
    assert result.title == "Rubrik"
    assert result.text == "Text om hyresrätter och grannsamverkan i stadsdelen."


def test_a_huge_page_is_cut_before_parsing(monkeypatch: pytest.MonkeyPatch):
    # a smaller limit keeps the test fast; the page is still fifty times larger than the limit
    limit = 40_000
    monkeypatch.setattr(page_module, "MAX_HTML_CHARS", limit)
    # inline state before the article (as on Mynewsdesk) does not count towards the limit
    script = "<script>" + "var state = {};" * (limit // 5) + "</script>"
    article = "<h1>Stor sida</h1><p>Första stycket handlar om bostäder och grannskap i Malmö.</p>"
    filler = "<div>" + "ord " * (limit * 12) + "</div>"
    html = f"<html><body>{script}{article}{filler}<p>SLUTMARKÖR</p></body></html>"
    assert len(html) > 50 * limit
    result = extract(html)
    assert result.text.startswith("Första stycket handlar om bostäder")
    assert "SLUTMARKÖR" not in result.text
    assert len(result.text) < limit
