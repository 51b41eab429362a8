"""The fetcher against real local servers: politeness, patience, limits and charsets."""

from __future__ import annotations

import gzip
import itertools
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sites import LocalSite, Reply, Request

from pipeline.config import CrawlSettings
from pipeline.crawl.fetch import Fetcher, decode_html

SENTENCE = "Fastighetsägarna i Malmö och Göteborg, hyresgästerna på Råby"
PRESS_RELEASE = f"""<!doctype html>
<html lang="sv"><head>{{meta}}<title>Nytt samarbete mot segregation</title></head>
<body><article><h1>Nytt samarbete mot segregation</h1>
<p>{SENTENCE} har i dag skrivit under en avsiktsförklaring om trygga bostadsområden.</p>
</article></body></html>"""
TOLERANCE = 0.03  # scheduler jitter allowed when measuring gaps at the server


def make_settings(**overrides: object) -> CrawlSettings:
    values: dict = {
        "user_agent": "svpipeline-test/0.1 (+https://example.org/om-roboten)",
        "timeout": 2.0,
        "max_bytes": 200_000,
        "retries": 2,
        "delay": 0.0,
    }
    values.update(overrides)
    return CrawlSettings(**values)


def page(meta: str = "") -> str:
    return PRESS_RELEASE.format(meta=meta)


class FakeClock:
    """A monotonic clock that only moves when the fetcher sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


def gaps(requests: list[Request]) -> list[float]:
    return [b.started - a.started for a, b in itertools.pairwise(requests)]


# --------------------------------------------------------------------------- basics


def test_a_page_is_fetched_decoded_and_described(site: LocalSite) -> None:
    site.route(
        "/pressmeddelanden/samarbete",
        Reply(200, page(), {"Content-Type": "text/html; charset=utf-8", "ETag": '"abc"'}),
    )
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/pressmeddelanden/samarbete"), allowed_hosts=[site.host])

    assert result.ok and result.error is None
    assert result.status == 200 and result.final_url == result.url
    assert SENTENCE in (result.text or "")
    assert result.content_type == "text/html" and result.encoding == "utf-8"
    assert result.etag == '"abc"' and result.headers["etag"] == '"abc"'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result.fetched_at)
    assert result.attempts == 1
    sent = site.hits("/pressmeddelanden/samarbete")[0].headers
    assert sent["user-agent"].startswith("svpipeline-test/0.1")
    assert result.request_headers["user-agent"] == sent["user-agent"]


def test_gzip_content_encoding_is_undone(site: LocalSite) -> None:
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
    site.route("/nyhet", Reply(200, gzip.compress(page().encode("utf-8")), headers))
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/nyhet"), allowed_hosts=[site.host])
    assert result.ok and SENTENCE in (result.text or "")


def test_hosts_outside_the_allowed_set_and_non_http_urls_are_never_requested(
    site: LocalSite,
) -> None:
    with Fetcher(make_settings()) as fetcher:
        foreign = fetcher.fetch(site.url("/nyhet"), allowed_hosts=["www.malmo.se"])
        mail = fetcher.fetch("mailto:press@malmo.se", allowed_hosts=[site.host])
    assert foreign.error == "host not allowed: 127.0.0.1" and foreign.status is None
    assert foreign.error_kind == "not_allowed" and not foreign.ok
    assert mail.error == "not an http(s) URL: mailto:press@malmo.se"
    assert site.requests == []


# --------------------------------------------------------------------------- robots.txt


def test_robots_disallow_is_obeyed_and_robots_is_fetched_once(site: LocalSite) -> None:
    site.page("/robots.txt", "User-agent: *\nDisallow: /interna/\n", "text/plain")
    site.page("/nyheter/1", page())
    site.page("/nyheter/2", page())
    with Fetcher(make_settings()) as fetcher:
        blocked = fetcher.fetch(site.url("/interna/styrelseprotokoll"), allowed_hosts=[site.host])
        first = fetcher.fetch(site.url("/nyheter/1"), allowed_hosts=[site.host])
        second = fetcher.fetch(site.url("/nyheter/2"), allowed_hosts=[site.host])

    assert blocked.error == "blocked by robots.txt" and blocked.error_kind == "robots"
    assert first.ok and second.ok
    assert site.hits("/interna/styrelseprotokoll") == []
    assert len(site.hits("/robots.txt")) == 1


def test_robots_group_for_our_product_token_wins_over_the_wildcard(site: LocalSite) -> None:
    robots = "User-agent: *\nAllow: /\n\nUser-agent: svpipeline-test\nDisallow: /\n"
    site.page("/robots.txt", robots, "text/plain")
    with Fetcher(make_settings()) as fetcher:
        assert fetcher.robots_allowed(site.url("/nyheter")) is False
        result = fetcher.fetch(site.url("/nyheter"), allowed_hosts=[site.host])
    assert result.error_kind == "robots" and site.hits("/nyheter") == []


def test_missing_robots_allows_everything(site: LocalSite) -> None:
    site.page("/nyheter", page())
    with Fetcher(make_settings()) as fetcher:
        assert fetcher.robots_allowed(site.url("/nyheter"))
        assert fetcher.fetch(site.url("/nyheter"), allowed_hosts=[site.host]).ok


def test_unreachable_robots_means_not_now(site: LocalSite) -> None:
    site.route("/robots.txt", Reply(503, "Underhåll pågår"))
    site.page("/nyheter", page())
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/nyheter"), allowed_hosts=[site.host])
    assert result.error_kind == "robots_unavailable" and result.transient
    assert result.error == "robots.txt unavailable (HTTP 503), not now"
    assert site.hits("/nyheter") == []


def test_robots_can_be_skipped_on_request(site: LocalSite) -> None:
    site.page("/robots.txt", "User-agent: *\nDisallow: /\n", "text/plain")
    site.page("/nyheter", page())
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/nyheter"), allowed_hosts=[site.host], check_robots=False)
    assert result.ok and site.hits("/robots.txt") == []


def test_an_oversized_robots_txt_is_cut_at_500_kib_and_still_obeyed(site: LocalSite) -> None:
    robots = "User-agent: *\nDisallow: /interna/\n" + "# Allt om våra regler\n" * 40_000
    assert len(robots.encode()) > 600_000
    site.page("/robots.txt", robots, "text/plain; charset=utf-8")
    site.page("/nyheter", page())
    with Fetcher(make_settings()) as fetcher:
        blocked = fetcher.fetch(site.url("/interna/plan"), allowed_hosts=[site.host])
        allowed = fetcher.fetch(site.url("/nyheter"), allowed_hosts=[site.host])
    assert blocked.error_kind == "robots" and allowed.ok


# --------------------------------------------------------------------------- politeness


def test_config_delay_spaces_requests_to_one_host(site: LocalSite) -> None:
    for n in range(3):
        site.page(f"/nyheter/{n}", page())
    with Fetcher(make_settings(delay=0.2)) as fetcher:
        for n in range(3):
            assert fetcher.fetch(site.url(f"/nyheter/{n}"), allowed_hosts=[site.host]).ok
    arrivals = site.requests  # robots.txt, then the three pages
    assert arrivals[0].path == "/robots.txt" and len(arrivals) == 4
    assert all(gap >= 0.2 - TOLERANCE for gap in gaps(arrivals))


def test_a_per_call_delay_overrides_the_configured_one(site: LocalSite) -> None:
    site.page("/a", page())
    site.page("/b", page())
    with Fetcher(make_settings(delay=5.0)) as fetcher:
        started = time.monotonic()
        for path in ("/a", "/b"):
            fetcher.fetch(site.url(path), allowed_hosts=[site.host], delay=0.1, check_robots=False)
    assert gaps(site.requests)[0] >= 0.1 - TOLERANCE
    assert time.monotonic() - started < 2


def test_robots_crawl_delay_is_honoured_when_longer_than_the_config_delay(site: LocalSite) -> None:
    site.page("/robots.txt", "User-agent: *\nCrawl-delay: 0.4\nDisallow: /sok\n", "text/plain")
    for n in range(3):
        site.page(f"/nyheter/{n}", page())
    with Fetcher(make_settings(delay=0.05)) as fetcher:
        for n in range(3):
            assert fetcher.fetch(site.url(f"/nyheter/{n}"), allowed_hosts=[site.host]).ok
    pages = [r for r in site.requests if r.path.startswith("/nyheter")]
    assert len(pages) == 3
    assert all(gap >= 0.4 - TOLERANCE for gap in gaps(pages))


def test_pacing_uses_the_injected_clock(site: LocalSite) -> None:
    site.page("/a", page())
    site.page("/b", page())
    clock = FakeClock()
    with Fetcher(make_settings(delay=5.0), clock=clock, sleep=clock.sleep) as fetcher:
        fetcher.fetch(site.url("/a"), allowed_hosts=[site.host])
        fetcher.fetch(site.url("/b"), allowed_hosts=[site.host])
    # robots.txt needs no wait; each page then waits the full delay after the previous request
    assert clock.sleeps == [pytest.approx(5.0), pytest.approx(5.0)]


def test_at_most_one_request_per_host_is_in_flight(site: LocalSite) -> None:
    for n in range(4):
        site.route(f"/nyheter/{n}", Reply(200, page(), {"Content-Type": "text/html"}, delay=0.1))
    results = []
    with Fetcher(make_settings(delay=0.0)) as fetcher:

        def crawl(n: int) -> None:
            results.append(fetcher.fetch(site.url(f"/nyheter/{n}"), allowed_hosts=[site.host]))

        threads = [threading.Thread(target=crawl, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(results) == 4 and all(r.ok for r in results)
    pages = sorted((r for r in site.requests if r.path != "/robots.txt"), key=lambda r: r.started)
    for before, after in itertools.pairwise(pages):
        assert before.finished is not None
        assert after.started >= before.finished - TOLERANCE


# --------------------------------------------------------------------------- retries


def test_503_is_retried_until_success(site: LocalSite) -> None:
    site.route("/nyhet", Reply(503), Reply(503), Reply(200, page(), {"Content-Type": "text/html"}))
    with Fetcher(make_settings(retries=2), backoff=0.05) as fetcher:
        result = fetcher.fetch(site.url("/nyhet"), allowed_hosts=[site.host])
    assert result.ok and result.attempts == 3
    assert len(site.hits("/nyhet")) == 3


def test_backoff_doubles_and_the_fetcher_gives_up_after_the_retries(site: LocalSite) -> None:
    site.route("/nyhet", Reply(503))
    clock = FakeClock()
    with Fetcher(make_settings(retries=3), clock=clock, sleep=clock.sleep, backoff=1.0) as fetcher:
        result = fetcher.fetch(site.url("/nyhet"), allowed_hosts=[site.host])
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(4.0)]
    assert len(site.hits("/nyhet")) == 4 and result.attempts == 4
    assert result.error == "HTTP 503 Service Unavailable after 4 attempts"
    assert result.status == 503 and result.transient and not result.ok


def test_429_with_retry_after_seconds_waits_that_long(site: LocalSite) -> None:
    site.route("/nyhet", Reply(429, headers={"Retry-After": "1"}), Reply(200, page()))
    with Fetcher(make_settings(retries=1), backoff=0.01) as fetcher:
        result = fetcher.fetch(site.url("/nyhet"), allowed_hosts=[site.host])
    assert result.ok
    assert gaps(site.hits("/nyhet"))[0] >= 1.0 - TOLERANCE


def test_retry_after_as_http_date_is_honoured_and_capped(site: LocalSite) -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    site.route(
        "/nyhet",
        Reply(503, headers={"Retry-After": soon}),
        Reply(429, headers={"Retry-After": "86400"}),
        Reply(200, page()),
    )
    clock = FakeClock()
    with Fetcher(make_settings(retries=2), clock=clock, sleep=clock.sleep) as fetcher:
        assert fetcher.fetch(site.url("/nyhet"), allowed_hosts=[site.host]).ok
    assert 28.0 <= clock.sleeps[0] <= 30.5
    assert clock.sleeps[1] == pytest.approx(60.0)


def test_client_errors_are_not_retried(site: LocalSite) -> None:
    with Fetcher(make_settings(retries=3), backoff=0.01) as fetcher:
        result = fetcher.fetch(site.url("/finns-inte"), allowed_hosts=[site.host])
    assert result.status == 404 and result.attempts == 1
    assert result.error == "HTTP 404 Not Found" and result.error_kind == "http"
    assert not result.transient


def test_a_slow_server_gives_a_timeout_error(site: LocalSite) -> None:
    site.route("/seg", Reply(200, page(), delay=1.0))
    with Fetcher(make_settings(timeout=0.3, retries=0)) as fetcher:
        result = fetcher.fetch(site.url("/seg"), allowed_hosts=[site.host], check_robots=False)
    assert result.error == "timeout after 0.3 s" and result.error_kind == "timeout"
    assert result.status is None and result.elapsed < 1.0


def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Fetcher(make_settings(retries=1), backoff=0.01) as fetcher:
        result = fetcher.fetch(
            f"http://127.0.0.1:{port}/nyhet", allowed_hosts=["127.0.0.1"], check_robots=False
        )
    assert result.error_kind == "network" and result.attempts == 2
    assert result.error is not None and result.error.startswith("connection failed")
    assert result.error.endswith("(2 attempts)")


def test_a_connection_dropped_mid_body_is_an_error_that_keeps_the_bytes_read(
    site: LocalSite,
) -> None:
    start = page().encode()[:120]
    promised = {"Content-Type": "text/html", "Content-Length": "9000"}
    site.route("/avbruten", Reply(200, start, promised))
    with Fetcher(make_settings(retries=0)) as fetcher:
        result = fetcher.fetch(site.url("/avbruten"), allowed_hosts=[site.host])
    assert result.status == 200 and not result.ok and result.text is None
    assert result.error_kind == "network" and result.truncated
    assert result.error is not None and result.error.startswith("connection failed")
    assert result.body == start


# --------------------------------------------------------------------------- conditional GET


def test_conditional_get_sends_validators_and_reports_not_modified(site: LocalSite) -> None:
    stamp = "Wed, 24 May 2023 08:00:00 GMT"

    def release(request: Request) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        headers = {
            "Content-Type": "text/html; charset=utf-8",
            "ETag": '"v1"',
            "Last-Modified": stamp,
        }
        return Reply(200, page(), headers)

    site.route("/pressmeddelande", release)
    with Fetcher(make_settings()) as fetcher:
        first = fetcher.fetch(site.url("/pressmeddelande"), allowed_hosts=[site.host])
        again = fetcher.fetch(
            site.url("/pressmeddelande"),
            allowed_hosts=[site.host],
            etag=first.etag,
            last_modified=first.last_modified,
        )
    assert first.ok and first.etag == '"v1"' and first.last_modified == stamp
    assert again.not_modified and again.error is None and again.body == b""
    sent = site.hits("/pressmeddelande")[1].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == stamp
    assert "if-none-match" not in site.hits("/pressmeddelande")[0].headers


# --------------------------------------------------------------------------- redirects


def test_redirects_within_the_host_are_followed(site: LocalSite) -> None:
    site.route("/gammal-adress", Reply(301, headers={"Location": "/nyheter/ny-adress"}))
    site.page("/nyheter/ny-adress", page())
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/gammal-adress"), allowed_hosts=[site.host])
    assert result.ok and result.final_url == site.url("/nyheter/ny-adress")
    assert result.url == site.url("/gammal-adress") and result.attempts == 2


def test_redirect_to_another_host_is_refused(site: LocalSite) -> None:
    site.route("/ut", Reply(302, headers={"Location": "http://evil.example/"}))
    port = site.url("/").split(":")[2].rstrip("/")
    site.route("/via-localhost", Reply(302, headers={"Location": f"http://localhost:{port}/ny"}))
    with Fetcher(make_settings()) as fetcher:
        away = fetcher.fetch(site.url("/ut"), allowed_hosts=[site.host])
        alias = fetcher.fetch(site.url("/via-localhost"), allowed_hosts=[site.host])
    assert away.error == "redirect to other host refused: http://evil.example/"
    assert away.status == 302 and away.error_kind == "redirect"
    assert alias.error == f"redirect to other host refused: http://localhost:{port}/ny"
    assert site.hits("/ny") == []


def test_redirect_loop_is_detected(site: LocalSite) -> None:
    site.route("/a", Reply(302, headers={"Location": "/b"}))
    site.route("/b", Reply(302, headers={"Location": "/a"}))
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/a"), allowed_hosts=[site.host])
    assert result.error == f"redirect loop: {site.url('/a')} was already visited"
    assert len(site.hits("/a")) == 1 and len(site.hits("/b")) == 1


def test_more_than_five_redirects_are_refused(site: LocalSite) -> None:
    for n in range(10):
        site.route(f"/steg/{n}", Reply(302, headers={"Location": f"/steg/{n + 1}"}))
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/steg/0"), allowed_hosts=[site.host])
    assert result.error == "more than 5 redirects"
    assert len([r for r in site.requests if r.path.startswith("/steg/")]) == 6


# --------------------------------------------------------------------------- limits and types


def test_size_cap_stops_an_endless_body_while_streaming(site: LocalSite) -> None:
    def endless() -> Iterator[bytes]:
        chunk = b"<p>" + ("Hyresgästföreningen informerar. " * 200).encode() + b"</p>"
        for _ in range(100_000):  # ~700 MB if anyone read it all
            yield chunk

    site.route("/stor", Reply(200, endless(), {"Content-Type": "text/html"}))
    with Fetcher(make_settings(max_bytes=100_000)) as fetcher:
        result = fetcher.fetch(site.url("/stor"), allowed_hosts=[site.host])
    assert result.error == "response larger than 100000 bytes"
    assert result.error_kind == "too_large" and result.truncated
    assert len(result.body) == 100_000 and result.text is None
    assert result.elapsed < 5


def test_an_announced_oversize_body_is_not_read(site: LocalSite) -> None:
    site.route("/rapport", Reply(200, b"x" * 300_000, {"Content-Type": "text/html"}))
    with Fetcher(make_settings(max_bytes=100_000)) as fetcher:
        result = fetcher.fetch(site.url("/rapport"), allowed_hosts=[site.host])
    assert result.error == "response larger than 100000 bytes" and result.body == b""


def test_a_pdf_is_skipped_without_downloading_it(site: LocalSite) -> None:
    site.route(
        "/rapport.pdf",
        Reply(200, b"%PDF-1.7\n" + b"\x00" * 5000, {"Content-Type": "application/pdf"}),
    )
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/rapport.pdf"), allowed_hosts=[site.host])
    assert result.error == "binary content (application/pdf) skipped"
    assert result.error_kind == "content" and result.body == b"" and result.text is None


@pytest.mark.parametrize(
    ("body", "detected"),
    [
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (bytes(range(256)) * 8, "application/octet-stream"),
    ],
)
def test_binary_bytes_served_as_html_are_skipped(
    site: LocalSite, body: bytes, detected: str
) -> None:
    site.route("/bilaga", Reply(200, body, {"Content-Type": "text/html; charset=utf-8"}))
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/bilaga"), allowed_hosts=[site.host])
    assert result.error == f"binary content ({detected}) skipped"
    assert result.text is None and not result.ok


def test_a_gzip_sitemap_is_kept_as_bytes_for_discovery(site: LocalSite) -> None:
    sitemap = gzip.compress(b"<urlset><url><loc>https://example.se/a</loc></url></urlset>")
    site.route("/sitemap.xml.gz", Reply(200, sitemap, {"Content-Type": "application/x-gzip"}))
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/sitemap.xml.gz"), allowed_hosts=[site.host])
    assert result.ok and result.body == sitemap and result.text is None


def test_other_text_types_are_skipped(site: LocalSite) -> None:
    site.route("/stil.css", Reply(200, "body { color: black }", {"Content-Type": "text/css"}))
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/stil.css"), allowed_hosts=[site.host])
    assert result.error == "unsupported content type (text/css) skipped"


# --------------------------------------------------------------------------- charsets

LATIN1_META = '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
CHARSET_CASES = {
    "latin-1 declared in the header": ("latin-1", "text/html; charset=ISO-8859-1", ""),
    "latin-1 undeclared": ("latin-1", "text/html", ""),
    "latin-1 declared in meta http-equiv": ("latin-1", "text/html", LATIN1_META),
    "utf-8 declared in the header": ("utf-8", "text/html; charset=utf-8", ""),
    "utf-8 undeclared": ("utf-8", "text/html", ""),
    "utf-8 declared in meta charset": ("utf-8", "text/html", '<meta charset="utf-8">'),
    "utf-8 mislabelled as latin-1": ("utf-8", "text/html; charset=iso-8859-1", ""),
    "latin-1 mislabelled as utf-8": ("latin-1", "text/html; charset=utf-8", ""),
    "utf-8 with BOM mislabelled as latin-1": ("utf-8-sig", "text/html; charset=latin1", ""),
    "windows-1252 punctuation labelled latin-1": ("cp1252", "text/html; charset=iso-8859-1", ""),
}


@pytest.mark.parametrize("case", CHARSET_CASES)
def test_swedish_letters_survive_every_charset_situation(site: LocalSite, case: str) -> None:
    codec, content_type, meta = CHARSET_CASES[case]
    html = page(meta)
    if codec == "cp1252":  # typographic quotes exist in windows-1252 but not in latin-1
        html = html.replace("Nytt samarbete", "”Nytt samarbete”")
    site.route("/sida", Reply(200, html.encode(codec), {"Content-Type": content_type}))
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/sida"), allowed_hosts=[site.host])
    assert result.ok
    assert SENTENCE in (result.text or "")
    if codec == "cp1252":
        assert "”Nytt samarbete”" in (result.text or "")


def test_an_xml_declaration_names_the_charset_of_a_feed(site: LocalSite) -> None:
    feed = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<rss version="2.0"><channel>'
        f"<title>{SENTENCE}</title></channel></rss>"
    )
    site.route("/feed", Reply(200, feed.encode("latin-1"), {"Content-Type": "application/rss+xml"}))
    with Fetcher(make_settings()) as fetcher:
        result = fetcher.fetch(site.url("/feed"), allowed_hosts=[site.host])
    assert result.ok and result.encoding == "cp1252"
    assert SENTENCE in (result.text or "")


@pytest.mark.parametrize("codec", ["latin-1", "utf-8", "utf-8-sig"])
def test_saved_pages_decode_with_the_same_rule(codec: str) -> None:
    saved = page('<meta charset="iso-8859-1">' if codec == "latin-1" else "").encode(codec)
    assert SENTENCE in decode_html(saved)
    assert SENTENCE in decode_html(saved, "text/html; charset=windows-1252")
