"""Serve the bundled offline sample sites, and route their host names to the local server.

The sample sites in ``corpus/sample/sites/<host>/`` keep their own host names
(``pressrum.example``, …) in links, feeds and sitemaps, exactly like real sites. One threaded
HTTP server on 127.0.0.1 serves them all, choosing the site by the ``Host`` header, and the
crawler is given a :class:`RoutingTransport` that connects to that server while keeping the
original URL and ``Host`` header. Stored URLs therefore stay the same from run to run, even
though the server gets a new free port each time.
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

import httpx

from pipeline.config import REPO_ROOT

SAMPLE_SITES = REPO_ROOT / "corpus" / "sample" / "sites"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


class RoutingTransport(httpx.BaseTransport):
    """Send requests for the mapped host names to local addresses, like curl's ``--connect-to``.

    Only the connection target changes: the URL the crawler sees, the ``Host`` header and
    everything stored keep the public host name.
    """

    def __init__(
        self, routes: Mapping[str, tuple[str, int]], inner: httpx.BaseTransport | None = None
    ):
        self.routes = dict(routes)
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = self.routes.get(request.url.host)
        if target is None:
            return self.inner.handle_request(request)
        host, port = target
        routed = httpx.Request(
            request.method,
            request.url.copy_with(scheme="http", host=host, port=port),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return self.inner.handle_request(routed)

    def close(self) -> None:
        self.inner.close()


class _SiteHandler(BaseHTTPRequestHandler):
    """Serves static files with ETag and Last-Modified, and answers conditional GETs with 304."""

    server: _SampleHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the crawler logs what matters."""

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _resolve(self) -> Path | None:
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        root = self.server.sites.get(host)
        if root is None:
            return None
        relative = PurePosixPath(unquote(urlsplit(self.path).path)).relative_to("/")
        if ".." in relative.parts:
            return None
        path = root.joinpath(*relative.parts)
        if path.is_dir():
            path = path / "index.html"
        return path if path.is_file() else None

    def _serve(self, *, send_body: bool) -> None:
        path = self._resolve()
        if path is None:
            body = b"<!doctype html><title>404</title><h1>Sidan finns inte</h1>"
            reply(
                self,
                HTTPStatus.NOT_FOUND,
                body,
                "text/html; charset=utf-8",
                {},
                send_body=send_body,
            )
            return
        body = path.read_bytes()
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": modified}
        if self.headers.get("If-None-Match") == etag or (
            self.headers.get("If-None-Match") is None
            and self.headers.get("If-Modified-Since") == modified
        ):
            reply(self, HTTPStatus.NOT_MODIFIED, b"", None, headers, send_body=send_body)
            return
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        reply(
            self,
            HTTPStatus.OK,
            body,
            kind or "application/octet-stream",
            headers,
            send_body=send_body,
        )


def reply(
    handler: BaseHTTPRequestHandler,
    status: HTTPStatus,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str],
    *,
    send_body: bool = True,
) -> None:
    """Send a complete response with its length; a 304 (or a HEAD request, ``send_body``
    false) gets the headers only."""
    handler.send_response(status)
    if content_type:
        handler.send_header("Content-Type", content_type)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if send_body and status != HTTPStatus.NOT_MODIFIED:
        handler.wfile.write(body)


class BackgroundServer:
    """A threading HTTP server answering from a thread of this process inside a ``with`` block,
    as the sample and the benchmark site are served to a batch running in the same process."""

    def __init__(self, server: ThreadingHTTPServer):
        self._server = server
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _SampleHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sites: dict[str, Path]):
        super().__init__(("127.0.0.1", 0), _SiteHandler)
        self.sites = sites


class SampleServer(BackgroundServer):
    """The sample sites on one free port of 127.0.0.1, for as long as the ``with`` block lasts."""

    _server: _SampleHTTPServer

    def __init__(self, sites_dir: Path = SAMPLE_SITES):
        sites = {p.name.lower(): p for p in sorted(Path(sites_dir).iterdir()) if p.is_dir()}
        if not sites:
            raise FileNotFoundError(f"no sample sites found in {sites_dir}")
        super().__init__(_SampleHTTPServer(sites))

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def hosts(self) -> list[str]:
        return list(self._server.sites)

    def routes(self) -> dict[str, tuple[str, int]]:
        """Host name → local address, for :class:`RoutingTransport`."""
        return {host: ("127.0.0.1", self.port) for host in self._server.sites}

    def transport(self) -> RoutingTransport:
        return RoutingTransport(self.routes())
