"""The WARC archive: what is written can be read back exactly, at the offset the database keeps."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from sites import LocalSite, Reply
from warcio.archiveiterator import ArchiveIterator

from pipeline.config import CrawlSettings
from pipeline.crawl.archive import ArchiveError, WarcArchive, WarcRef, read_record
from pipeline.crawl.fetch import Fetcher, FetchResult

SETTINGS = CrawlSettings(
    user_agent="svpipeline-test/0.1", timeout=2.0, max_bytes=200_000, retries=0, delay=0.0
)
RELEASE = """<!doctype html><html lang="sv"><head><meta charset="iso-8859-1">
<title>Bostadsbolag och hyresgäster i samverkan</title></head><body>
<h1>Bostadsbolag och hyresgäster i samverkan</h1>
<p>Fastighetsägarna i Malmö och Göteborg, hyresgästerna på Råby och Rosengård
fastigheter startar ett gemensamt arbete mot diskriminering på bostadsmarknaden.</p>
</body></html>"""


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


def fetched(site: LocalSite, path: str, **kwargs: str) -> FetchResult:
    with Fetcher(SETTINGS) as fetcher:
        return fetcher.fetch(site.url(path), allowed_hosts=[site.host], **kwargs)


def synthetic(url: str, body: bytes = b"<p>Hej</p>", **fields: object) -> FetchResult:
    """A result built by hand, for tests that are about the archive and not about HTTP."""
    values: dict = {
        "url": url,
        "final_url": url,
        "status": 200,
        "reason": "OK",
        "headers": {"content-type": "text/html; charset=utf-8"},
        "body": body,
        "fetched_at": "2026-11-22T05:30:00Z",
        "request_headers": {"host": "example.se", "user-agent": "svpipeline-test/0.1"},
    }
    values.update(fields)
    return FetchResult(**values)


def records(path: Path) -> list:
    """(type, WARC headers, HTTP headers) of every record in a WARC file, in order."""
    with open(path, "rb") as handle:
        return [
            (r.rec_type, dict(r.rec_headers.headers), r.http_headers)
            for r in ArchiveIterator(handle)
        ]


def test_a_fetched_page_round_trips_through_the_archive(site: LocalSite, tmp_path: Path) -> None:
    headers = {
        "Content-Type": "text/html",
        "Content-Encoding": "gzip",
        "ETag": '"r1"',
        "Set-Cookie": "sessionid=abc; HttpOnly",
    }
    site.route("/nyheter/samverkan", Reply(200, gzip.compress(RELEASE.encode("latin-1")), headers))
    result = fetched(site, "/nyheter/samverkan")
    assert result.ok

    with WarcArchive(tmp_path) as archive:
        ref = archive.write(result)
    back = read_record(tmp_path, ref)

    assert back.url == result.final_url
    assert back.status == 200 and back.reason == "OK"
    assert back.headers == result.headers
    assert back.body == result.body
    assert back.text == result.text and "hyresgästerna på Råby" in (back.text or "")
    assert back.encoding == result.encoding == "cp1252"
    assert back.fetched_at == result.fetched_at and not back.truncated


def test_records_in_one_file_are_addressable_by_offset(site: LocalSite, tmp_path: Path) -> None:
    site.page("/nyheter/1", RELEASE.replace("Råby", "Tensta"))
    site.page("/nyheter/2", RELEASE.replace("Råby", "Husby"))
    first, second = fetched(site, "/nyheter/1"), fetched(site, "/nyheter/2")

    with WarcArchive(tmp_path, prefix="test") as archive:
        refs = [archive.write(first), archive.write(second)]

    assert refs[0].filename == refs[1].filename and refs[0].filename.startswith("test-")
    assert refs[0].offset + refs[0].length < refs[1].offset
    data = (tmp_path / refs[0].filename).read_bytes()
    for ref, district in zip(refs, ("Tensta", "Husby"), strict=True):
        # exactly one complete gzip member per reference: nothing missing, nothing extra
        chunk = data[ref.offset : ref.offset + ref.length]
        assert len(list(ArchiveIterator(BytesIO(chunk)))) == 1
        assert district in (read_record(tmp_path, ref).text or "")


def test_each_response_is_followed_by_its_request(site: LocalSite, tmp_path: Path) -> None:
    site.page("/pressmeddelande", RELEASE)
    result = fetched(site, "/pressmeddelande", etag='"gammal"', last_modified="Mon, 01 May 2023")
    with WarcArchive(tmp_path) as archive:
        ref = archive.write(result)

    kinds = records(tmp_path / ref.filename)
    assert [kind for kind, _, _ in kinds] == ["warcinfo", "response", "request"]
    (_, response, _), (_, request, http) = kinds[1], kinds[2]
    assert request["WARC-Concurrent-To"] == response["WARC-Record-ID"]
    assert request["WARC-Target-URI"] == response["WARC-Target-URI"] == result.final_url
    assert http.protocol == "GET" and http.statusline == "/pressmeddelande HTTP/1.1"
    assert http.get_header("if-none-match") == '"gammal"'
    assert http.get_header("if-modified-since") == "Mon, 01 May 2023"
    assert http.get_header("user-agent") == "svpipeline-test/0.1"


def test_a_record_is_on_disk_before_write_returns(tmp_path: Path) -> None:
    # The child writes one record and dies at once, without closing or flushing anything.
    program = f"""
import json, os, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from test_archive import synthetic
from pipeline.crawl.archive import WarcArchive
ref = WarcArchive(Path({str(tmp_path)!r})).write(synthetic("https://example.se/nyhet"))
print(json.dumps([ref.filename, ref.offset, ref.length]), flush=True)
os._exit(0)
"""
    output = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout
    ref = WarcRef(*json.loads(output))
    assert read_record(tmp_path, ref).body == b"<p>Hej</p>"


def test_files_rotate_when_they_grow_past_the_limit(tmp_path: Path) -> None:
    with WarcArchive(tmp_path, rotate_bytes=1) as archive:
        first = archive.write(synthetic("https://example.se/a"))
        second = archive.write(synthetic("https://example.se/b"))
    assert first.filename.endswith("-00000.warc.gz")
    assert second.filename.endswith("-00001.warc.gz")
    assert read_record(tmp_path, second).url == "https://example.se/b"


@pytest.mark.parametrize(
    ("error_kind", "reason"),
    [("too_large", "length"), ("timeout", "time"), ("content", "unspecified")],
)
def test_incomplete_bodies_are_marked_truncated_with_the_reason(
    tmp_path: Path, error_kind: str, reason: str
) -> None:
    result = synthetic(
        "https://example.se/stor",
        body=b"<p>" + b"a" * 1000,
        truncated=True,
        error="the body is incomplete",
        error_kind=error_kind,
    )
    with WarcArchive(tmp_path) as archive:
        ref = archive.write(result)
    back = read_record(tmp_path, ref)
    assert back.truncated and back.body == result.body
    _, response, _ = records(tmp_path / ref.filename)[1]
    assert response["WARC-Truncated"] == reason


def test_complete_bodies_are_not_marked_truncated(tmp_path: Path) -> None:
    with WarcArchive(tmp_path) as archive:
        ref = archive.write(synthetic("https://example.se/a"))
    assert not read_record(tmp_path, ref).truncated
    assert "WARC-Truncated" not in records(tmp_path / ref.filename)[1][1]


def test_results_without_a_response_cannot_be_archived(tmp_path: Path) -> None:
    failed = FetchResult(url="https://example.se/", final_url="https://example.se/", error="x")
    with WarcArchive(tmp_path) as archive, pytest.raises(ValueError, match="no HTTP response"):
        archive.write(failed)


def test_concurrent_writers_never_interleave_records(tmp_path: Path) -> None:
    refs: dict[str, WarcRef] = {}
    with WarcArchive(tmp_path) as archive:

        def worker(n: int) -> None:
            for m in range(10):
                url = f"https://example.se/nyheter/{n}-{m}"
                body = f"<p>Nyhet {n}-{m} från Järva</p>".encode()
                refs[url] = archive.write(synthetic(url, body=body))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(refs) == 60
    for url, ref in refs.items():
        back = read_record(tmp_path, ref)
        assert back.url == url
        assert back.text == f"<p>Nyhet {url.rsplit('/', 1)[1]} från Järva</p>"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate ENOSPC")
def test_a_full_disk_raises_archive_error_naming_the_file(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path, rotate_bytes=1)
    first = archive.write(synthetic("https://example.se/a"))
    full = tmp_path / first.filename.replace("-00000.", "-00001.")
    full.symlink_to("/dev/full")  # the next file in the series is on a "full disk"

    with pytest.raises(ArchiveError, match="No space left on device") as raised:
        archive.write(synthetic("https://example.se/b"))
    assert str(full) in str(raised.value)

    full.unlink()  # space freed: writing continues and stays readable
    later = archive.write(synthetic("https://example.se/c"))
    archive.close()
    assert read_record(tmp_path, later).url == "https://example.se/c"
    assert read_record(tmp_path, first).url == "https://example.se/a"


def test_a_wrong_reference_is_a_clear_error(tmp_path: Path) -> None:
    with WarcArchive(tmp_path) as archive:
        ref = archive.write(synthetic("https://example.se/a"))
    with pytest.raises(ArchiveError, match="no readable WARC record"):
        read_record(tmp_path, WarcRef(ref.filename, ref.offset + 1, ref.length))
    with pytest.raises(ArchiveError, match="cannot read WARC record"):
        read_record(tmp_path, WarcRef("saknas.warc.gz", 0, 10))
