"""URL normalisation for the crawl frontier.

The same press release is linked as ``…/pressmeddelande/?utm_source=rss#kontakt`` from a feed,
as ``…/Pressmeddelande`` from a listing and as ``…/pressmeddelande/`` from a sitemap. The frontier
keys pages by :func:`canonicalize`, so every variation that cannot change the document served must
collapse to one string, and every variation that can (path case, the order-independent query
itself, http vs https) must be kept.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

# Query keys added by campaign and click tracking; they never select a different document.
_TRACKING_KEYS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "vero_id",
        "oly_enc_id",
        "oly_anon_id",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters that may stay literal in a path or a query component (RFC 3986 pchar / query).
_PATH_SAFE = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_QUERY_SAFE = (_PATH_SAFE | frozenset("?")) - frozenset("&=")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def is_http_url(url: str) -> bool:
    """True for an absolute ``http``/``https`` URL with a host name."""
    try:
        parts = urlsplit(url.strip())
        return parts.scheme.lower() in _DEFAULT_PORTS and bool(parts.hostname)
    except ValueError:
        return False


def canonicalize(url: str) -> str:
    """Return the one spelling of ``url`` that the frontier uses as its key.

    Raises ``ValueError`` for anything that is not an absolute http(s) URL, so that callers
    filter ``mailto:``, ``javascript:`` and broken links with :func:`is_http_url` first.
    """
    if not is_http_url(url):
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    netloc = _netloc(scheme, parts.username, parts.password, parts.hostname or "", parts.port)
    path = _remove_dot_segments(re.sub(r"/{2,}", "/", _normalise_escapes(parts.path, _PATH_SAFE)))
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path or "/", _canonical_query(parts.query), ""))


def _netloc(
    scheme: str, username: str | None, password: str | None, host: str, port: int | None
) -> str:
    """Lower-case (and IDNA-encode) the host and drop the scheme's default port."""
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        host = host.lower()
    if ":" in host:  # an IPv6 literal lost its brackets in urlsplit().hostname
        host = f"[{host}]"
    userinfo = ""
    if username is not None:
        userinfo = username + (f":{password}" if password is not None else "") + "@"
    show_port = port is not None and port != _DEFAULT_PORTS[scheme]
    return f"{userinfo}{host}{f':{port}' if show_port else ''}"


def _normalise_escapes(component: str, safe: frozenset[str]) -> str:
    """Give each character exactly one spelling: ``ö``, ``%c3%b6`` and ``%C3%B6`` all become
    ``%C3%B6``; ``%7E`` becomes ``~``; reserved escapes such as ``%2F`` stay escaped."""

    out: list[str] = []
    for piece in re.split(r"(%[0-9A-Fa-f]{2})", component):
        if _PERCENT.fullmatch(piece):
            char = chr(int(piece[1:], 16))
            out.append(char if char in _UNRESERVED else piece.upper())
            continue
        for char in piece:
            if char in safe:
                out.append(char)
            else:
                out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """Resolve ``.`` and ``..`` the way RFC 3986 section 5.2.4 does, never above the root."""
    segments = path.split("/")
    resolved: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment != ".":
            resolved.append(segment)
    if segments[-1] in (".", ".."):
        resolved.append("")
    return "/" + "/".join(resolved)


def _canonical_query(query: str) -> str:
    """Drop tracking parameters and empty pieces, normalise escapes, sort the rest."""
    kept: list[str] = []
    for piece in query.split("&"):
        if not piece:
            continue
        key, sep, value = piece.partition("=")
        if _is_tracking(unquote_plus(key)):
            continue
        kept.append(
            _normalise_escapes(key, _QUERY_SAFE) + sep + _normalise_escapes(value, _QUERY_SAFE)
        )
    return "&".join(sorted(kept, key=lambda pair: pair.partition("=")[::2]))


def _is_tracking(key: str) -> bool:
    lowered = key.lower()
    return lowered in _TRACKING_KEYS or lowered.startswith(_TRACKING_PREFIXES)
