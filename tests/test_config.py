"""sources.yaml: what a valid file gives, and how each mistake is reported to its editor."""

from pathlib import Path

import pytest

from pipeline.config import (
    DEFAULT_SOURCES,
    SAMPLE_SOURCES,
    ConfigError,
    load_sources,
    parse_duration,
    parse_sources,
)

VALID = """\
defaults:
  user_agent: "svpipeline/0.1 (+https://example.org/kontakt)"
  delay: 2
  recrawl: 6h
sources:
  - id: malmo-stad
    name: Malmö stad – nyheter
    kind: news
    hosts: [malmo.se]
    paths: ['^/Nyheter/']
    recrawl: 12h
    discover:
      - listing: https://malmo.se/Nyheter.html
        links: "a.news-link"
        next: "a[rel=next]"
        max_pages: 5
    selectors:
      body: ".sv-text-portlet"
      remove: [".share"]
  - id: regeringen
    name: Regeringskansliet – pressmeddelanden
    kind: press_release
    hosts: [www.regeringen.se]
    discover:
      - feed: https://www.regeringen.se/Filter/RssFeed?filterType=Taxonomy
"""


def parse(text: str):
    return parse_sources(text, Path("sources.yaml"))


def error_for(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return str(caught.value)


def test_a_valid_file_gives_sources_with_defaults_filled_in():
    config = parse(VALID)
    malmo, regeringen = config.sources
    assert malmo.recrawl_seconds == 12 * 3600
    assert regeringen.recrawl_seconds == 6 * 3600
    assert regeringen.delay == 2.0
    assert malmo.discover[0].method == "listing"
    assert malmo.discover[0].next == "a[rel=next]"
    assert malmo.selectors.remove == (".share",)
    assert config.settings.user_agent.startswith("svpipeline/")
    assert config.get("regeringen") is regeringen


def test_document_urls_must_be_on_an_allowed_host_and_match_a_path_rule():
    malmo = parse(VALID).get("malmo-stad")
    assert malmo.is_document("https://malmo.se/Nyheter/2017-02-27-fler-malmobor.html")
    assert not malmo.is_document("https://malmo.se/Kontakt.html")
    assert not malmo.is_document("https://evil.example/Nyheter/x.html")
    assert not malmo.is_document("file:///etc/passwd")


def test_an_unknown_kind_names_the_line_the_source_and_the_allowed_values():
    message = error_for(VALID.replace("kind: news", "kind: nyhet"))
    assert message.startswith("sources.yaml:8:")
    assert "source 'malmo-stad'" in message
    assert "key 'sources.0.kind'" in message
    assert "'press_release', 'blog_post', 'news' or 'opinion'" in message


def test_a_misspelt_key_is_reported_as_unknown():
    message = error_for(VALID.replace("    paths:", "    path:"))
    assert "sources.yaml:10:" in message
    assert "'sources.0.path'" in message
    assert "not a known key" in message


def test_a_missing_required_key_is_reported():
    message = error_for(VALID.replace("    hosts: [www.regeringen.se]\n", ""))
    assert "source 'regeringen'" in message
    assert "'sources.1.hosts': is required" in message


def test_a_feed_must_be_an_http_url():
    message = error_for(
        VALID.replace("feed: https://www.regeringen.se", "feed: ftp://regeringen.se")
    )
    assert "sources.yaml:25:" in message
    assert "expected an absolute http(s) URL" in message


def test_a_discover_entry_needs_exactly_one_method():
    broken = VALID.replace(
        "      - feed: https://www.regeringen.se/Filter/RssFeed?filterType=Taxonomy",
        "      - links: a",
    )
    assert "exactly one of: feed, sitemap, listing, start" in error_for(broken)


def test_a_bad_regular_expression_and_a_bad_duration_are_explained():
    assert "not a valid regular expression" in error_for(VALID.replace("'^/Nyheter/'", "'^/(N'"))
    assert "expected a duration such as 30m, 6h or 1d" in error_for(
        VALID.replace("recrawl: 12h", "recrawl: tolv timmar")
    )


def test_duplicate_source_ids_are_refused():
    twice = VALID.replace("id: regeringen", "id: malmo-stad")
    assert "duplicate source id 'malmo-stad'" in error_for(twice)


def test_broken_yaml_names_the_line():
    message = error_for(VALID.replace("    name: Malmö stad – nyheter", "    name: [Malmö"))
    assert message.startswith("sources.yaml:")
    assert "not valid YAML" in message


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_sources(tmp_path / "finns-inte.yaml")


def test_durations():
    assert parse_duration("30m") == 1800
    assert parse_duration("1d") == 86400
    assert parse_duration(90) == 90
    with pytest.raises(ValueError):
        parse_duration("0h")


@pytest.mark.parametrize("path", [DEFAULT_SOURCES, SAMPLE_SOURCES], ids=["real", "sample"])
def test_the_shipped_sources_files_are_valid(path):
    if not path.exists():
        pytest.skip(f"{path} not written yet")
    config = load_sources(path)
    assert config.sources
