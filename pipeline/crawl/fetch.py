"""Polite, patient, never-raising HTTP fetching.

A batch crawls a few hundred pages per site from organisations that did not ask to be crawled,
so the fetcher is deliberately conservative: it obeys robots.txt (and treats an unreachable
robots.txt as "not now"), keeps one request per host in flight with a pause between requests,
backs off when a server says it is overloaded, refuses to leave the hosts a source is allowed to
visit, and never downloads more than ``max_bytes``. Every problem comes back as a
:class:`FetchResult` with an ``error``, because one broken page must not stop a batch.

Only http(s) URLs on a source's hosts are requested, and a host name that resolves to a
loopback, private, link-local or otherwise non-public address is refused (on every redirect hop
too) unless the sources file allows it: a public site must not be able to steer the crawler at
the machine it runs on or at its network. A host written as an IP address in ``sources.yaml``
was listed on purpose and is not refused.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx
from protego import Protego

from pipeline.config import CrawlSettings
from pipeline.crawl.content import (
    GZIP_TYPES,
    decode_body,
    is_text_type,
    media_type,
    sniff_binary,
)
from pipeline.crawl.urls import is_http_url

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
MAX_WAIT = 60.0  # longest single wait for Retry-After, backoff or Crawl-delay, in seconds
ROBOTS_TTL = 24 * 3600.0  # RFC 9309 asks crawlers not to use a robots.txt older than a day
ROBOTS_RETRY = 300.0  # an unreachable robots.txt means "disallow" for this long
ROBOTS_MAX_BYTES = 512_000  # RFC 9309: parse at least the first 500 KiB
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,text/plain;q=0.8,*/*;q=0.5"

ErrorKind = Literal[
    "not_allowed",  # not http(s), or a host outside allowed_hosts (no request made)
    "robots",  # disallowed by robots.txt (no request made)
    "robots_unavailable",  # robots.txt answered 429/5xx or not at all: try again later
    "redirect",  # loop, too many hops, missing Location, or a hop to a foreign host
    "timeout",
    "network",  # connection refused/reset, protocol or decoding error
    "http",  # final status 4xx/5xx
    "too_large",  # body over max_bytes: truncated
    "content",  # not a text document (PDF, image, binary bytes served as HTML, ...)
]
TRANSIENT_KINDS = frozenset({"robots_unavailable", "timeout", "network"})


@dataclass
class FetchResult:
    """What happened when one URL was fetched (after redirects and retries).

    ``status`` is None when no response arrived at all. ``body`` holds at most ``max_bytes``;
    ``text`` is set only for a successful textual response. ``error_kind`` classifies ``error``
    for the frontier (see :data:`ErrorKind`); ``request_headers`` are the headers actually sent
    for the final request, which the WARC request record needs.
    """

    url: str
    final_url: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    text: str | None = None
    content_type: str = ""
    encoding: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: str = ""
    elapsed: float = 0.0
    attempts: int = 0
    error: str | None = None
    error_kind: ErrorKind | None = None
    reason: str = ""
    http_version: str = "HTTP/1.1"
    request_headers: dict[str, str] = field(default_factory=dict)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """A 2xx response that was read completely and is usable."""
        return self.status is not None and 200 <= self.status < 300 and self.error is None

    @property
    def not_modified(self) -> bool:
        """The server confirmed that the copy we have (etag/last-modified) is current."""
        return self.status == 304

    @property
    def transient(self) -> bool:
        """A failure worth retrying soon: network trouble, timeouts, overloaded servers."""
        if self.error_kind in TRANSIENT_KINDS:
            return True
        return self.error_kind == "http" and (self.status == 429 or (self.status or 0) >= 500)


@dataclass
class _Exchange:
    """One request/response at one URL (one attempt)."""

    url: str
    status: int | None = None
    reason: str = ""
    http_version: str = "HTTP/1.1"
    headers: dict[str, str] = field(default_factory=dict)
    request_headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False
    error: str | None = None
    error_kind: ErrorKind | None = None

    def fail(self, kind: ErrorKind, message: str) -> _Exchange:
        self.error_kind, self.error = kind, message
        return self

    @property
    def retryable(self) -> bool:
        if self.error_kind in ("timeout", "network"):
            return True
        return self.status is not None and (self.status == 429 or self.status >= 500)


@dataclass
class _HostGate:
    """Serialises requests to one host and remembers when the next one may start."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    robots_lock: threading.Lock = field(default_factory=threading.Lock)
    last_end: float | None = None
    blocked_until: float = 0.0


@dataclass(frozen=True)
class _Robots:
    parser: Protego | None  # None: robots.txt unreachable, so nothing is allowed for now
    expires: float
    problem: str = ""


class Fetcher:
    """Fetch pages for the crawl; safe to share between threads (one thread per source).

    ``clock`` and ``sleep`` pace the requests (inject fakes to test pacing deterministically;
    ``sleep`` must advance ``clock``). ``transport`` replaces httpx's network transport.
    ``backoff`` is the first wait before retrying a failed request; it doubles per attempt.
    """

    def __init__(
        self,
        settings: CrawlSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        backoff: float = 1.0,
    ):
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._backoff = backoff
        self._agent_token = _product_token(settings.user_agent)
        self._client = httpx.Client(
            transport=transport,
            timeout=settings.timeout,
            follow_redirects=False,
            headers={
                "User-Agent": settings.user_agent,
                "Accept": ACCEPT,
                "Accept-Language": "sv,en;q=0.7",
            },
        )
        self._lock = threading.Lock()
        self._gates: dict[str, _HostGate] = {}
        self._robots: dict[str, _Robots] = {}

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    # ----------------------------------------------------------------------------- public API

    def fetch(
        self,
        url: str,
        *,
        allowed_hosts: Collection[str],
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float | None = None,
        check_robots: bool = True,
    ) -> FetchResult:
        """GET ``url``, following at most five redirects inside ``allowed_hosts``.

        ``etag``/``last_modified`` make the request conditional (a 304 means "unchanged");
        ``delay`` is the minimum pause between two requests to the host (default: settings),
        raised to the robots.txt Crawl-delay when that is longer.
        """
        started = time.monotonic()
        allowed = {host.lower() for host in allowed_hosts}
        spacing = self.settings.delay if delay is None else delay
        conditional = {}
        if etag:
            conditional["If-None-Match"] = etag
        if last_modified:
            conditional["If-Modified-Since"] = last_modified
        visited: list[str] = []
        attempts = 0
        current = url
        exchange: _Exchange | None = None
        while True:
            refusal = self._refusal(
                current, allowed, check_robots, spacing, redirected=bool(visited)
            )
            if refusal:
                if exchange is None:
                    exchange = _Exchange(url=current)
                exchange.fail(*refusal)
                break
            visited.append(current)
            exchange, tries = self._with_retries(current, conditional, spacing)
            attempts += tries
            target = _redirect_target(exchange)
            if target is None:
                break
            if target in visited:
                exchange.fail("redirect", f"redirect loop: {target} was already visited")
                break
            if len(visited) > MAX_REDIRECTS:
                exchange.fail("redirect", f"more than {MAX_REDIRECTS} redirects")
                break
            current = target
        return self._result(url, exchange, started, attempts)

    def robots_allowed(self, url: str) -> bool:
        """True when robots.txt for the URL's host lets this crawler fetch it (fetched once)."""
        if not is_http_url(url):
            return False
        return self._robots_refusal(url, self.settings.delay) is None

    # ----------------------------------------------------------------------------- decisions

    def _refusal(
        self, url: str, allowed: set[str], check_robots: bool, spacing: float, *, redirected: bool
    ) -> tuple[ErrorKind, str] | None:
        """Why ``url`` must not be requested, or None when it may."""
        if not is_http_url(url):
            return "not_allowed", f"not an http(s) URL: {url}"
        host = (urlsplit(url).hostname or "").lower()
        if host not in allowed:
            if redirected:
                return "redirect", f"redirect to other host refused: {url}"
            return "not_allowed", f"host not allowed: {host}"
        private = None if self.settings.allow_private_addresses else _private_address(host)
        if private:
            if redirected:
                return "redirect", f"redirect to a private address refused: {url} ({private})"
            return "not_allowed", (
                f"{host} resolves to the private address {private}; set "
                "allow_private_addresses: true under defaults in the sources file to crawl it"
            )
        if check_robots:
            return self._robots_refusal(url, spacing)
        return None

    def _robots_refusal(self, url: str, spacing: float) -> tuple[ErrorKind, str] | None:
        robots = self._robots_for(url, spacing)
        if robots.parser is None:
            return "robots_unavailable", f"robots.txt unavailable ({robots.problem}), not now"
        if not robots.parser.can_fetch(url, self._agent_token):
            return "robots", "blocked by robots.txt"
        return None

    def _crawl_delay(self, url: str) -> float:
        with self._lock:
            robots = self._robots.get(_origin(url))
        if robots is None or robots.parser is None:
            return 0.0
        return min(robots.parser.crawl_delay(self._agent_token) or 0.0, MAX_WAIT)

    # ----------------------------------------------------------------------------- robots.txt

    def _robots_for(self, url: str, spacing: float) -> _Robots:
        """The cached robots.txt verdict for the URL's origin, downloading it when needed."""
        origin = _origin(url)
        gate = self._gate(url)
        with gate.robots_lock:
            with self._lock:
                cached = self._robots.get(origin)
            if cached is not None and cached.expires > self._clock():
                return cached
            robots = self._download_robots(origin, spacing)
            with self._lock:
                self._robots[origin] = robots
            return robots

    def _download_robots(self, origin: str, spacing: float) -> _Robots:
        """Fetch and parse ``/robots.txt`` following RFC 9309's status rules.

        2xx: parse. Other 4xx, or redirects that leave the host: no rules, allow everything.
        429, 5xx, timeouts and network errors: disallow everything until ROBOTS_RETRY passes.
        """
        url = f"{origin}/robots.txt"
        host = urlsplit(url).hostname
        for _ in range(MAX_REDIRECTS + 1):
            exchange = self._exchange(url, {}, spacing, robots=True)
            now = self._clock()
            if exchange.error_kind in ("timeout", "network"):
                return _Robots(None, now + ROBOTS_RETRY, exchange.error or "")
            status = exchange.status or 0
            if status == 429 or status >= 500:
                return _Robots(None, now + ROBOTS_RETRY, f"HTTP {status}")
            if 200 <= status < 300:
                text = exchange.body.decode("utf-8", errors="replace")
                return _Robots(Protego.parse(text), now + ROBOTS_TTL)
            target = _redirect_target(exchange)
            if target is None or urlsplit(target).hostname != host:
                break
            url = target
        return _Robots(Protego.parse(""), self._clock() + ROBOTS_TTL)

    # ----------------------------------------------------------------------------- requests

    def _with_retries(
        self, url: str, extra_headers: dict[str, str], spacing: float
    ) -> tuple[_Exchange, int]:
        """Request ``url`` until it succeeds, fails permanently, or retries run out."""
        spacing = max(spacing, self._crawl_delay(url))
        attempts = self.settings.retries + 1
        for attempt in range(1, attempts + 1):
            exchange = self._exchange(url, extra_headers, spacing)
            if not exchange.retryable:
                return exchange, attempt
            if attempt == attempts:
                break
            wait = _retry_after(exchange.headers) or self._backoff * 2 ** (attempt - 1)
            wait = min(wait, MAX_WAIT)
            log.info("retrying %s in %.1f s (%s)", url, wait, exchange.error)
            self._hold_host(url, wait)
        if attempts > 1:
            suffix = f" after {attempts} attempts" if exchange.status else f" ({attempts} attempts)"
            exchange.error = f"{exchange.error}{suffix}"
        return exchange, attempts

    def _exchange(
        self, url: str, extra_headers: dict[str, str], spacing: float, *, robots: bool = False
    ) -> _Exchange:
        """One request through the host's gate: wait for our turn, send, read, record the end."""
        gate = self._gate(url)
        with gate.lock:
            target = gate.blocked_until
            if gate.last_end is not None:
                target = max(target, gate.last_end + spacing)
            remaining = target - self._clock()
            if remaining > 0:
                self._sleep(remaining)
            try:
                return self._request(url, extra_headers, robots=robots)
            finally:
                gate.last_end = self._clock()

    def _request(self, url: str, extra_headers: dict[str, str], *, robots: bool) -> _Exchange:
        exchange = _Exchange(url=url)
        deadline = time.monotonic() + 2 * self.settings.timeout
        try:
            with self._client.stream("GET", url, headers=extra_headers) as response:
                exchange.status = response.status_code
                exchange.reason = response.reason_phrase
                exchange.http_version = response.http_version
                exchange.headers = {k.lower(): v for k, v in response.headers.items()}
                exchange.request_headers = {
                    k.lower(): v for k, v in response.request.headers.items()
                }
                if robots:
                    self._read(response, exchange, ROBOTS_MAX_BYTES, deadline, partial_ok=True)
                else:
                    self._read_document(response, exchange, deadline)
        except httpx.TimeoutException:
            exchange.fail("timeout", f"timeout after {self.settings.timeout:g} s")
        except httpx.DecodingError as exc:
            exchange.fail("network", f"could not decode the response body: {exc}")
        except httpx.TransportError as exc:
            exchange.fail("network", f"connection failed: {exc or type(exc).__name__}")
        except httpx.InvalidURL as exc:
            exchange.fail("not_allowed", f"invalid URL: {exc}")
        if exchange.error_kind in ("timeout", "network") and exchange.status is not None:
            exchange.truncated = True  # the connection failed after the status line
        if exchange.error is None and exchange.status and exchange.status >= 400:
            exchange.fail("http", f"HTTP {exchange.status} {exchange.reason}".rstrip())
        return exchange

    def _read_document(
        self, response: httpx.Response, exchange: _Exchange, deadline: float
    ) -> None:
        """Read the body if it is something the pipeline can use; classify it otherwise."""
        media = media_type(exchange.headers.get("content-type"))
        compressed = media in GZIP_TYPES or (
            media == "application/octet-stream" and urlsplit(exchange.url).path.endswith(".gz")
        )
        textual = is_text_type(media) or media == ""
        if not 200 <= response.status_code < 300:
            if textual:  # keep error pages; they help when debugging a source
                self._read(response, exchange, self.settings.max_bytes, deadline)
            else:
                exchange.truncated = _has_body(response)
            return
        if not (textual or compressed):
            exchange.truncated = _has_body(response)  # never downloaded
            label = "unsupported content type" if media.startswith("text/") else "binary content"
            exchange.fail("content", f"{label} ({media}) skipped")
            return
        self._read(response, exchange, self.settings.max_bytes, deadline)
        if exchange.error:
            return
        sniffed = sniff_binary(exchange.body)
        if compressed and sniffed != "application/gzip":
            exchange.fail("content", f"binary content ({sniffed or media}) skipped")
        elif textual and sniffed:
            exchange.fail("content", f"binary content ({sniffed}) skipped")

    def _read(
        self,
        response: httpx.Response,
        exchange: _Exchange,
        limit: int,
        deadline: float,
        *,
        partial_ok: bool = False,
    ) -> None:
        """Stream the body into ``exchange``, stopping at ``limit`` bytes or at the deadline.

        Over the limit is an error for documents; robots.txt (``partial_ok``) is simply cut
        there, as RFC 9309 allows. Bytes read before a failure are kept.
        """
        announced = response.headers.get("content-length", "")
        if not partial_ok and announced.isdigit() and int(announced) > limit:
            exchange.truncated = True
            exchange.fail("too_large", f"response larger than {limit} bytes")
            return
        buffer = bytearray()
        try:
            for chunk in response.iter_bytes():
                room = limit - len(buffer)
                buffer += chunk[:room]
                if len(chunk) > room:
                    exchange.truncated = True
                    if not partial_ok:
                        exchange.fail("too_large", f"response larger than {limit} bytes")
                    break
                if time.monotonic() > deadline:
                    exchange.truncated = True
                    exchange.fail("timeout", f"timeout after {self.settings.timeout:g} s")
                    break
        finally:
            exchange.body = bytes(buffer)

    # ----------------------------------------------------------------------------- helpers

    def _gate(self, url: str) -> _HostGate:
        key = urlsplit(url).netloc.lower()
        with self._lock:
            return self._gates.setdefault(key, _HostGate())

    def _hold_host(self, url: str, seconds: float) -> None:
        """Keep every thread away from the host for ``seconds`` (it asked us to back off)."""
        gate = self._gate(url)
        with self._lock:
            gate.blocked_until = max(gate.blocked_until, self._clock() + seconds)

    def _result(self, url: str, exchange: _Exchange, started: float, attempts: int) -> FetchResult:
        headers = exchange.headers
        content_type = headers.get("content-type")
        media = media_type(content_type)
        text = encoding = None
        status = exchange.status or 0
        if exchange.error is None and 200 <= status < 300 and (is_text_type(media) or not media):
            text, encoding = decode_body(exchange.body, content_type)
        return FetchResult(
            url=url,
            final_url=exchange.url,
            status=exchange.status,
            headers=headers,
            body=exchange.body,
            text=text,
            content_type=media,
            encoding=encoding,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            fetched_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            elapsed=time.monotonic() - started,
            attempts=attempts,
            error=exchange.error,
            error_kind=exchange.error_kind,
            reason=exchange.reason,
            http_version=exchange.http_version,
            request_headers=exchange.request_headers,
            truncated=exchange.truncated,
        )


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode a page saved to disk (or fetched elsewhere) exactly as the fetcher would.

    ``content_type`` is the HTTP Content-Type header when known; without it the BOM, the
    ``<meta>`` charset, the XML declaration and the bytes themselves decide.
    """
    return decode_body(body, content_type)[0]


def _redirect_target(exchange: _Exchange) -> str | None:
    """The absolute URL a redirect points to; marks a redirect without Location as an error."""
    if exchange.status not in REDIRECT_STATUSES or exchange.error:
        return None
    location = exchange.headers.get("location", "").strip()
    if not location:
        exchange.fail("redirect", f"HTTP {exchange.status} redirect without a Location header")
        return None
    return urljoin(exchange.url, location).split("#", 1)[0]


def _has_body(response: httpx.Response) -> bool:
    """Whether a response we chose not to read would have carried any bytes."""
    no_body = response.status_code in (204, 304) or response.headers.get("content-length") == "0"
    return not no_body


def _retry_after(headers: dict[str, str]) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _private_address(host: str) -> str | None:
    """The first non-public address a host name resolves to, or None.

    None also when the name does not resolve (the request then fails on its own, or a custom
    transport routes it) and for IP addresses, which only pass the host check when listed.
    """
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            return str(address)
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _product_token(user_agent: str) -> str:
    """``"svpipeline/0.1 (+https://…)"`` → ``"svpipeline"``: robots.txt groups match on this."""
    token = user_agent.strip().split("/", 1)[0].split(" ", 1)[0]
    return token or user_agent
