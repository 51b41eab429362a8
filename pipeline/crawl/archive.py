"""The raw-response archive: gzip WARC files written with warcio.

Keeping every response lets extraction and NLP be re-run without touching the sites again. The
database stores a :class:`WarcRef` (file, offset, length) per fetch, so each record is flushed
before its reference is returned: a process killed right after ``write`` still leaves the
referenced record complete on disk.

The body in the archive is the body as fetched, after HTTP content and transfer decoding (httpx
undoes gzip and chunking). So that standard WARC tools do not try to decode it again, the
``content-encoding``, ``transfer-encoding`` and ``content-length`` headers are stored as
``x-archive-orig-<name>`` and a ``content-length`` matching the stored body is added;
:func:`read_record` undoes this, so the headers read back are the headers received.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.crawl.content import decode_body, is_text_type, media_type, sniff_binary
from pipeline.crawl.fetch import FetchResult

ROTATE_BYTES = 100_000_000
_ORIG_PREFIX = "x-archive-orig-"
_REWRITTEN = ("content-encoding", "transfer-encoding", "content-length")
# WARC 1.1 WARC-Truncated values for the fetch errors that leave a body incomplete
_TRUNCATION_REASONS = {"too_large": "length", "timeout": "time", "network": "disconnect"}


class ArchiveError(RuntimeError):
    """The archive could not be written or read; the message names the file."""


@dataclass(frozen=True)
class WarcRef:
    """Where one response record lives: a file relative to the archive directory."""

    filename: str
    offset: int
    length: int


@dataclass(frozen=True)
class ArchivedResponse:
    """A response read back from the archive, decoded the same way the fetcher decodes it."""

    url: str
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    text: str | None
    content_type: str
    encoding: str | None
    fetched_at: str
    truncated: bool


class WarcArchive:
    """Append fetch results to ``<prefix>-<run start>-<pid>-<n>.warc.gz`` files.

    One archive object writes one series of files, rotating to the next number once a file
    reaches ``rotate_bytes``. Writes from several threads are serialised.
    """

    def __init__(
        self, directory: Path, *, prefix: str = "pipeline", rotate_bytes: int = ROTATE_BYTES
    ):
        self.directory = Path(directory)
        self._stem = f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}"
        self._rotate_bytes = rotate_bytes
        self._lock = threading.Lock()
        self._number = 0
        self._file: BinaryIO | None = None
        self._filename = ""

    def __enter__(self) -> WarcArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the current file (the next write opens a new one)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def write(self, result: FetchResult) -> WarcRef:
        """Archive a response and the request that produced it; return the response's place.

        Only results with an HTTP response can be archived (``status`` is not None); an
        incomplete body (``result.truncated``) is marked with ``WARC-Truncated``.
        """
        if result.status is None:
            raise ValueError(f"nothing to archive for {result.url}: no HTTP response")
        with self._lock:
            out = self._current_file()
            path = self.directory / self._filename
            start = out.tell()
            try:
                writer = WARCWriter(out, gzip=True)
                if start == 0:
                    writer.write_record(_warcinfo_record(writer, self._filename))
                offset = out.tell()
                response = _response_record(writer, result)
                writer.write_record(response)
                end = out.tell()
                writer.write_record(_request_record(writer, result, response))
            except OSError as exc:
                self._abandon(out, path, start)
                raise ArchiveError(f"cannot write WARC record to {path}: {exc}") from exc
            return WarcRef(self._filename, offset, end - offset)

    def _current_file(self) -> BinaryIO:
        """The open file to append to, rotating when it has grown past the limit."""
        if self._file is not None and self._file.tell() >= self._rotate_bytes:
            self._file.close()
            self._file = None
            self._number += 1
        if self._file is None:
            self._filename = f"{self._stem}-{self._number:05d}.warc.gz"
            path = self.directory / self._filename
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "ab")  # noqa: SIM115 - kept open across writes
            except OSError as exc:
                raise ArchiveError(f"cannot open WARC file {path}: {exc}") from exc
        return self._file

    def _abandon(self, out: BinaryIO, path: Path, start: int) -> None:
        """After a failed write, cut the half-written record so later offsets stay valid.

        The buffered file may still hold unwritten bytes, so it is closed (ignoring the
        repeated error) and truncated by path; if even that fails, later records go to the
        next file in the series.
        """
        self._file = None
        with contextlib.suppress(OSError):
            out.close()
        try:
            os.truncate(path, start)
        except OSError:
            self._number += 1


def read_record(directory: Path, ref: WarcRef) -> ArchivedResponse:
    """Read the response record at ``ref`` and decode its body like the fetcher does."""
    path = Path(directory) / ref.filename
    try:
        with open(path, "rb") as handle:
            handle.seek(ref.offset)
            data = handle.read(ref.length)
    except OSError as exc:
        raise ArchiveError(f"cannot read WARC record from {path}: {exc}") from exc
    if len(data) != ref.length:
        raise ArchiveError(f"{path} ends before offset {ref.offset} + {ref.length}")
    try:
        record = next(iter(ArchiveIterator(BytesIO(data))))
        body = record.raw_stream.read()
    except (StopIteration, ArchiveLoadFailed, OSError, ValueError) as exc:
        raise ArchiveError(f"no readable WARC record at {path}:{ref.offset}: {exc}") from exc
    if record.rec_type != "response" or record.http_headers is None:
        raise ArchiveError(f"{path}:{ref.offset} holds a {record.rec_type} record, not a response")
    headers = _restore_headers(record.http_headers.headers)
    content_type = headers.get("content-type")
    media = media_type(content_type)
    status = int(record.http_headers.get_statuscode())
    text = encoding = None
    textual = is_text_type(media) or not media
    if 200 <= status < 300 and textual and body and sniff_binary(body) is None:
        text, encoding = decode_body(body, content_type)
    _, _, reason = record.http_headers.statusline.partition(" ")
    return ArchivedResponse(
        url=record.rec_headers.get_header("WARC-Target-URI"),
        status=status,
        reason=reason,
        headers=headers,
        body=body,
        text=text,
        content_type=media,
        encoding=encoding,
        fetched_at=record.rec_headers.get_header("WARC-Date") or "",
        truncated=record.rec_headers.get_header("WARC-Truncated") is not None,
    )


def _warcinfo_record(writer: WARCWriter, filename: str) -> ArcWarcRecord:
    """Each file starts with a warcinfo record saying what wrote it (WARC convention)."""
    info = {"software": "pipeline (Swedish press-release crawler)", "format": "WARC/1.0"}
    return writer.create_warcinfo_record(filename, info)


def _response_record(writer: WARCWriter, result: FetchResult) -> ArcWarcRecord:
    headers = [(k, v) for k, v in result.headers.items() if k not in _REWRITTEN]
    headers += [(_ORIG_PREFIX + k, result.headers[k]) for k in _REWRITTEN if k in result.headers]
    headers.append(("content-length", str(len(result.body))))
    statusline = f"{result.status} {result.reason}".rstrip()
    http_headers = StatusAndHeaders(statusline, headers, protocol=result.http_version)
    warc_headers = _dated(result)
    if result.truncated:
        warc_headers["WARC-Truncated"] = _TRUNCATION_REASONS.get(
            result.error_kind or "", "unspecified"
        )
    return writer.create_warc_record(
        result.final_url,
        "response",
        payload=BytesIO(result.body),
        length=len(result.body),
        http_headers=http_headers,
        warc_headers_dict=warc_headers,
    )


def _request_record(
    writer: WARCWriter, result: FetchResult, response: ArcWarcRecord
) -> ArcWarcRecord:
    parts = urlsplit(result.final_url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # httpx speaks HTTP/1.1 to every server; the response may still say HTTP/1.0.
    version = "HTTP/2" if result.http_version.startswith("HTTP/2") else "HTTP/1.1"
    http_headers = StatusAndHeaders(
        f"GET {target} {version}",
        list(result.request_headers.items()),
        is_http_request=True,
    )
    warc_headers = _dated(result)
    warc_headers["WARC-Concurrent-To"] = response.rec_headers.get_header("WARC-Record-ID")
    return writer.create_warc_record(
        result.final_url,
        "request",
        payload=BytesIO(b""),
        length=0,
        http_headers=http_headers,
        warc_headers_dict=warc_headers,
    )


def _dated(result: FetchResult) -> dict[str, str]:
    """WARC headers carrying the fetch time (warcio stamps "now" when it is unknown)."""
    return {"WARC-Date": result.fetched_at} if result.fetched_at else {}


def _restore_headers(stored: list[tuple[str, str]]) -> dict[str, str]:
    """Undo the header rewriting done when writing (see the module docstring)."""
    headers = {k.lower(): v for k, v in stored if k.lower() != "content-length"}
    for key in [k for k in headers if k.startswith(_ORIG_PREFIX)]:
        headers[key[len(_ORIG_PREFIX) :]] = headers.pop(key)
    return headers
