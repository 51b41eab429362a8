"""URL canonicalisation: every spelling of one press release becomes one frontier key."""

import pytest

from pipeline.crawl.urls import canonicalize, is_http_url

RELEASE = (
    "https://www.mynewsdesk.com/se/hyresgastforeningen/pressreleases/ny-rapport-om-trangboddhet"
)


@pytest.mark.parametrize(
    "variant",
    [
        RELEASE,
        RELEASE + "/",
        RELEASE + "?utm_source=rss&utm_medium=rss&utm_campaign=Ny+rapport",
        RELEASE + "#kontakt",
        RELEASE + "?fbclid=IwAR3xYz&gclid=Cj0KCQ",
        RELEASE + "?mc_cid=4b1f&mc_eid=9e2d&_ga=2.1234",
        "HTTPS://WWW.MYNEWSDESK.COM:443/se/hyresgastforeningen/pressreleases/ny-rapport-om-trangboddhet",
        "https://www.mynewsdesk.com/se//hyresgastforeningen/./pressreleases/x/../ny-rapport-om-trangboddhet",
    ],
)
def test_variants_of_one_press_release_share_one_key(variant: str) -> None:
    assert canonicalize(variant) == RELEASE


def test_remaining_query_parameters_are_sorted_and_kept() -> None:
    url = "https://www.malmo.se/nyheter?sida=2&kategori=bostad&utm_content=lista"
    assert canonicalize(url) == "https://www.malmo.se/nyheter?kategori=bostad&sida=2"


def test_path_case_and_scheme_are_not_changed() -> None:
    # Paths can be case sensitive, and http/https are deduplicated by content hash instead.
    assert (
        canonicalize("http://example.se/Nyheter/Rosengard") == "http://example.se/Nyheter/Rosengard"
    )
    assert canonicalize("https://example.se/a") != canonicalize("http://example.se/a")


def test_root_keeps_its_slash_and_non_default_ports_stay() -> None:
    assert canonicalize("https://www.boverket.se") == "https://www.boverket.se/"
    assert canonicalize("https://www.boverket.se/") == "https://www.boverket.se/"
    assert canonicalize("http://localhost:8080/nyheter/") == "http://localhost:8080/nyheter"


def test_swedish_letters_in_paths_have_one_stable_escaping() -> None:
    raw = "https://www.goteborg.se/nyheter/hyresgäster-på-råby"
    escaped_lower = "https://www.goteborg.se/nyheter/hyresg%c3%a4ster-p%c3%a5-r%c3%a5by"
    expected = "https://www.goteborg.se/nyheter/hyresg%C3%A4ster-p%C3%A5-r%C3%A5by"
    assert canonicalize(raw) == expected
    assert canonicalize(escaped_lower) == expected
    assert canonicalize(expected) == expected


def test_reserved_escapes_stay_escaped_and_unreserved_ones_are_decoded() -> None:
    url = "https://example.se/arkiv/a%2Fb/%7Eredaktion?q=Malm%C3%B6+stad"
    assert canonicalize(url) == "https://example.se/arkiv/a%2Fb/~redaktion?q=Malm%C3%B6+stad"


def test_dot_segments_never_climb_above_the_root() -> None:
    assert canonicalize("https://example.se/../../nyheter/./") == "https://example.se/nyheter"


def test_canonicalize_is_idempotent() -> None:
    once = canonicalize("HTTP://Example.SE:80/a//b/../c/?b=2&a=1&utm_term=x#frag")
    assert once == "http://example.se/a/c?a=1&b=2"
    assert canonicalize(once) == once


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.malmo.se/", True),
        ("http://127.0.0.1:8000/nyheter", True),
        ("mailto:press@malmo.se", False),
        ("javascript:void(0)", False),
        ("/nyheter/relativ", False),
        ("ftp://example.se/fil.txt", False),
        ("http://[::1", False),
    ],
)
def test_is_http_url(url: str, expected: bool) -> None:
    assert is_http_url(url) is expected


def test_canonicalize_refuses_non_http_urls() -> None:
    with pytest.raises(ValueError, match="not an absolute http"):
        canonicalize("mailto:press@malmo.se")
