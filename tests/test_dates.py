"""Swedish dates: the expressions press rooms, blogs and municipal sites use, and the cascade
that picks a document's date from selector, JSON-LD, meta tags, <time> and the text."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.config import Selectors
from pipeline.extract import page
from pipeline.extract.dates import DateValue, find_date, parse_swedish_date

TODAY = date(2024, 3, 12)


# --------------------------------------------------------------------------- parse_swedish_date


@pytest.mark.parametrize(
    ("text", "value", "precision", "kind"),
    [
        # Mynewsdesk date line, seed 000
        ("2023-05-26 05:15", "2023-05-26T05:15", "minute", None),
        ("2023-05-26 05:15Pressmeddelande", "2023-05-26T05:15", "minute", None),
        # blog dates, seed 001
        ("25 april 2019", "2019-04-25", "day", None),
        ("6 februari 2020", "2020-02-06", "day", None),
        ("tisdag 17 september 2019", "2019-09-17", "day", None),
        ("den 6:e februari 2020", "2020-02-06", "day", None),
        # Malmö stad, seed 002
        ("Publicerad: 24 maj, 2020", "2020-05-24", "day", "published"),
        ("24 maj, 2020", "2020-05-24", "day", None),
        # Malmö stad, seed 004
        ("Senast uppdaterad 2017-02-27 16:10.", "2017-02-27T16:10", "minute", "updated"),
        ("Uppdaterad 7 februari 2020", "2020-02-07", "day", "updated"),
        # Allmännyttan project page, seed 003: a month, not the 1st of the month
        ("Publicerat i februari 2017", "2017-02", "month", "published"),
        ("mars 2021", "2021-03", "month", None),
        # abbreviated months, with and without the period
        ("3 feb 2021", "2021-02-03", "day", None),
        ("3 feb. 2021", "2021-02-03", "day", None),
        ("13 feb. 2024 09:30", "2024-02-13T09:30", "minute", None),
        ("Publicerades 3 sept. 2021 kl. 14.05", "2021-09-03T14:05", "minute", "published"),
        ("26 april 2019 kl. 09:14", "2019-04-26T09:14", "minute", None),
        # English releases from Swedish press rooms
        ("May 26, 2023 05:15 CEST", "2023-05-26T05:15", "minute", None),
        ("Published 3 October 2022", "2022-10-03", "day", "published"),
    ],
)
def test_swedish_date_expressions(text: str, value: str, precision: str, kind: str | None):
    assert parse_swedish_date(text) == DateValue(value, precision, kind)


@pytest.mark.parametrize(
    ("text", "value", "precision"),
    [
        # summer time (+02:00) and winter time (+01:00) in Stockholm
        ("2019-04-25T08:12:45+00:00", "2019-04-25T10:12", "minute"),
        ("2023-01-15T09:00:00Z", "2023-01-15T10:00", "minute"),
        ("2023-05-26T05:15:00+02:00", "2023-05-26T05:15", "minute"),
        ("2023-05-26T05:15:00.000+0200", "2023-05-26T05:15", "minute"),
        # local datetime without a zone is taken as it stands
        ("2021-01-26T05:15:00", "2021-01-26T05:15", "minute"),
        # midnight Swedish time is how CMSs store a bare date
        ("2019-04-24T22:00:00Z", "2019-04-25", "day"),
        ("2023-03-28", "2023-03-28", "day"),
    ],
)
def test_iso_datetimes_are_converted_to_swedish_wall_clock_time(
    text: str, value: str, precision: str
):
    assert parse_swedish_date(text) == DateValue(value, precision, None)


def test_a_month_is_never_given_a_day():
    for text in ("Publicerat i februari 2017", "februari 2017", "Uppdaterat i december 2019"):
        result = parse_swedish_date(text)
        assert result is not None and result.precision == "month"
        assert len(result.value) == len("2017-02")


@pytest.mark.parametrize(
    ("text", "value", "precision"),
    [
        ("igår", "2024-03-11", "day"),
        ("i går", "2024-03-11", "day"),
        ("idag 09:15", "2024-03-12T09:15", "minute"),
        ("I dag kl. 9.05", "2024-03-12T09:05", "minute"),
        ("i förrgår", "2024-03-10", "day"),
        ("för 3 dagar sedan", "2024-03-09", "day"),
    ],
)
def test_relative_dates_count_from_the_fetch_day(text: str, value: str, precision: str):
    assert parse_swedish_date(text, today=TODAY) == DateValue(value, precision, None)


def test_a_labelled_relative_date_keeps_its_label():
    assert parse_swedish_date("Publicerad igår kl. 14.32", today=TODAY) == DateValue(
        "2024-03-11T14:32", "minute", "published"
    )


def test_relative_dates_need_a_fetch_day():
    assert parse_swedish_date("igår") is None


def test_today_inside_a_sentence_is_not_a_date():
    sentence = "I dag samlas föreningarna i Malmö för att dela sina erfarenheter."
    assert parse_swedish_date(sentence, today=TODAY) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Ingen tidsangivelse här",
        "31 februari 2020",
        "2023-13-01",
        "Telefon 040-123 45 67",
        "Box 474, 101 29 Stockholm",
        "Sedan 2011 har 1 000 personer deltagit",
    ],
)
def test_text_without_a_valid_date_gives_none(text: str):
    assert parse_swedish_date(text) is None


def test_published_is_preferred_over_updated_in_either_order():
    expected = DateValue("2020-02-06", "day", "published")
    assert parse_swedish_date("Publicerad 6 februari 2020 Uppdaterad 7 februari 2020") == expected
    assert parse_swedish_date("Uppdaterad 7 februari 2020 · Publicerad 6 februari 2020") == expected


def test_an_unlabelled_date_is_preferred_over_an_update():
    assert parse_swedish_date("25 april 2019 · Uppdaterad 26 april 2019") == DateValue(
        "2019-04-25", "day", None
    )


# --------------------------------------------------------------------------- find_date cascade


def _tree(head: str = "", body: str = ""):
    html = f"<html><head><title>Nyhet</title>{head}</head><body>{body}</body></html>"
    return page.parse_html(html)


ARTICLE = (
    "<article><h1>Nya hyresrätter i Lindängen</h1>{meta}"
    "<p>Bostadsbolaget bygger 180 nya lägenheter i området under de kommande tre åren.</p>"
    "</article>"
)


def test_json_ld_date_published_comes_before_meta_and_visible_dates():
    head = (
        '<script type="application/ld+json">{"@context":"https://schema.org",'
        '"@type":"NewsArticle","datePublished":"2024-02-13T09:30:00+01:00",'
        '"dateModified":"2024-02-14T11:02:00+01:00"}</script>'
        '<meta property="article:published_time" content="2024-02-10T08:00:00+01:00">'
    )
    body = ARTICLE.format(meta="<p>12 februari 2024</p>")
    assert find_date(_tree(head, body)) == DateValue("2024-02-13T09:30", "minute", "published")


def test_json_ld_article_is_preferred_over_the_web_page_in_a_graph():
    head = (
        '<script type="application/ld+json">{"@context":"https://schema.org","@graph":['
        '{"@type":"WebPage","datePublished":"2019-04-01T10:00:00+00:00"},'
        '{"@type":"Article","datePublished":"2019-04-25T08:12:45+00:00"}]}</script>'
    )
    assert find_date(_tree(head, ARTICLE.format(meta=""))).value == "2019-04-25T10:12"


def test_unreadable_json_ld_is_skipped():
    head = (
        '<script type="application/ld+json">{"@type": "Article", datePublished: }</script>'
        '<meta property="article:published_time" content="2021-03-18T09:30:00+01:00">'
    )
    assert find_date(_tree(head, ARTICLE.format(meta=""))) == DateValue(
        "2021-03-18T09:30", "minute", "published"
    )


@pytest.mark.parametrize(
    "meta",
    [
        '<meta property="article:published_time" content="2023-03-28T10:00:00+02:00">',
        '<meta name="DC.date" content="2023-03-28T10:00">',
        '<meta name="date" content="2023-03-28 10:00">',
        '<meta property="og:published_time" content="Tue, 28 Mar 2023 08:00:00 GMT">',
    ],
)
def test_meta_tags_give_the_published_date(meta: str):
    assert find_date(_tree(meta, ARTICLE.format(meta=""))) == DateValue(
        "2023-03-28T10:00", "minute", "published"
    )


def test_a_visible_publication_date_beats_a_modified_meta_tag():
    # Allmännyttan-style project page: Yoast only states when the page was last edited
    head = '<meta property="article:modified_time" content="2021-03-04T13:45:10+00:00">'
    body = ARTICLE.format(meta="<p>Publicerat i februari 2017</p>")
    assert find_date(_tree(head, body)) == DateValue("2017-02", "month", "published")


def test_an_update_date_is_used_when_it_is_the_only_date():
    body = ARTICLE.format(meta="") + "<p>Senast uppdaterad 2017-02-27 16:10.</p>"
    assert find_date(_tree("", body)) == DateValue("2017-02-27T16:10", "minute", "updated")


def test_time_elements_take_their_kind_from_the_label_before_them():
    meta = (
        '<p class="published"><span>Publicerad</span> <time datetime="2023-03-28">28 mars 2023'
        '</time> <span>· Uppdaterad</span> <time datetime="2023-03-29">29 mars 2023</time></p>'
    )
    assert find_date(_tree("", ARTICLE.format(meta=meta))) == DateValue(
        "2023-03-28", "day", "published"
    )


def test_the_time_element_inside_the_article_is_used_not_a_teaser_outside_it():
    body = (
        '<aside><time datetime="2024-01-02T10:00:00+01:00">2 jan</time> Annan nyhet</aside>'
        + ARTICLE.format(meta='<time datetime="2023-11-08T09:45:00+01:00">8 nov 2023</time>')
    )
    assert find_date(_tree("", body)).value == "2023-11-08T09:45"


def test_a_date_in_running_text_is_not_taken_for_the_publication_date():
    body = ARTICLE.format(
        meta="<p>Överenskommelsen om partnerskapet gäller från 1 januari 2017 till 1 december "
        "2017, och den följs upp varje kvartal av enheten.</p>"
    )
    assert find_date(_tree("", body)) is None


def test_the_date_line_nearest_the_title_wins_over_teasers_further_down():
    body = (
        '<div class="post-date">25 april 2019</div><h1>Spännande att bli en del av labbet</h1>'
        "<p>Med stor entusiasm har jag tagit mig an ett nytt uppdrag i stödgruppen.</p>"
        '<div class="teaser"><div class="post-date">6 februari 2020</div><h2>Tack</h2></div>'
    )
    assert find_date(_tree("", body)) == DateValue("2019-04-25", "day", None)


def test_dates_after_the_fetch_day_are_event_dates_and_are_ignored():
    body = ARTICLE.format(meta="<p>Datum: 15 april 2024</p><p>Publicerad 1 mars 2024</p>")
    assert find_date(_tree("", body), today=TODAY) == DateValue("2024-03-01", "day", "published")


def test_relative_visible_date_uses_the_fetch_day():
    body = ARTICLE.format(meta="<div>Publicerad igår kl. 14.32</div>")
    assert find_date(_tree("", body), today=TODAY) == DateValue(
        "2024-03-11T14:32", "minute", "published"
    )


def test_the_source_selector_comes_first():
    head = '<meta property="article:published_time" content="2020-01-01T10:00:00+01:00">'
    body = ARTICLE.format(meta='<span class="release-date">2021-01-26 05:15</span>')
    selectors = Selectors(date=".release-date")
    assert find_date(_tree(head, body), selectors) == DateValue("2021-01-26T05:15", "minute", None)


def test_a_selector_that_matches_nothing_falls_back_to_the_cascade():
    head = '<meta property="article:published_time" content="2020-01-01T10:00:00+01:00">'
    selectors = Selectors(date=".finns-inte")
    assert find_date(_tree(head, ARTICLE.format(meta="")), selectors).value == "2020-01-01T10:00"


def test_a_page_without_dates_gives_none():
    assert find_date(_tree("", ARTICLE.format(meta=""))) is None
