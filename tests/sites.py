"""Real HTTP servers on 127.0.0.1 whose answers each test scripts.

Crawling behaviour (robots.txt, pacing, retries, redirects, size caps) is only believable when
tested against a real socket, so tests start a :class:`LocalSite`, script replies per path and
then inspect what the server actually received and when::

    with LocalSite() as site:
        site.route("/nyheter", Reply(503), Reply(200, "<h1>Hej</h1>"))
        ...
        assert [r.path for r in site.requests] == ["/robots.txt", "/nyheter", "/nyheter"]

Paths without a route answer 404 (so robots.txt allows everything unless a test routes it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted response. ``body`` may be an iterable of chunks to stream it; ``delay``
    holds the response back (before the status line) to simulate a slow server."""

    status: int = 200
    body: bytes | str | Iterable[bytes] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Request:
    """A request as the server saw it; times are ``time.monotonic()`` values."""

    method: str
    path: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names
    started: float
    finished: float | None = None


Handler = Callable[[Request], Reply]


class LocalSite:
    """A threaded HTTP/1.0 server on an ephemeral port, used as a context manager."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._routes: dict[str, Handler | list[Reply]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ scripting

    def route(self, path: str, *replies: Reply | Handler) -> None:
        """Answer ``path`` (with its query, if any) with ``replies`` in turn, repeating the last
        one; or with a callable that builds a reply from each :class:`Request`."""
        if len(replies) == 1 and callable(replies[0]):
            self._routes[path] = replies[0]
        else:
            self._routes[path] = list(replies)  # type: ignore[arg-type]

    def page(
        self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8"
    ) -> None:
        """Shorthand for a plain 200 response with a content type."""
        self.route(path, Reply(200, body, {"Content-Type": content_type}))

    # ------------------------------------------------------------------ inspecting

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def origin(self) -> str:
        assert self._server is not None, "the site is not running"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def hits(self, path: str) -> list[Request]:
        """Requests received for ``path`` (path and query), in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> LocalSite:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ serving

    def _record(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            route = self._routes.get(request.path)
            if route is None:
                route = self._routes.get(urlsplit(request.path).path)
            if route is None:
                return Reply(404, "<h1>Sidan kunde inte hittas</h1>", {"Content-Type": "text/html"})
            if callable(route):
                handler = route
            else:
                return route.pop(0) if len(route) > 1 else route[0]
        return handler(request)


def _make_handler(site: LocalSite) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            request = Request(
                method="GET",
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                started=time.monotonic(),
            )
            reply = site._record(request)
            try:
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up on purpose (size cap, timeout)
            finally:
                request.finished = time.monotonic()

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
            self.send_response(reply.status)
            names = {name.lower() for name in reply.headers}
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if isinstance(body, bytes) and "content-length" not in names:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if isinstance(body, bytes):
                self.wfile.write(body)
                return
            for chunk in body:
                self.wfile.write(chunk)

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output clean."""

    return _Handler
