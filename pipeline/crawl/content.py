"""Deciding whether a response is text, and turning its bytes into text without losing å, ä, ö.

Used both when fetching and when re-reading a WARC record, so that extraction sees exactly the
same text either way.

Charset rule, in order:

1. A byte-order mark wins: it cannot appear by accident, while a server's default
   ``charset=iso-8859-1`` very often can (this is also what browsers do).
2. A declared charset: the HTTP header, else ``<meta charset>`` / ``<meta http-equiv>``, else
   the XML declaration. Unknown names are ignored.
3. Declarations are checked against the bytes, because Swedish sites are often mislabelled:
   - declared Latin-1/cp1252/ASCII but the bytes are valid UTF-8 *with* multibyte sequences:
     UTF-8. Latin-1 text with å, ä, ö essentially never forms valid UTF-8 by chance (``ä`` is
     0xE4, which UTF-8 requires to be followed by two continuation bytes);
   - declared UTF-8 but the bytes contain no valid multibyte sequence and are not UTF-8:
     cp1252 (a Latin-1 page with a copied-in template header). A page that is mostly UTF-8
     with a stray bad byte stays UTF-8, with a replacement character.
4. Nothing declared: strict UTF-8, else cp1252 (a superset of Latin-1, and what browsers use for
   ``iso-8859-1``).
"""

from __future__ import annotations

import codecs
import re

TEXT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "text/plain",
        "text/xml",
        "application/xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
    }
)
# Compressed sitemaps (``sitemap.xml.gz``) are kept as bytes for discovery, never decoded.
GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/gzip-compressed"})

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_LATIN = frozenset({"ascii", "cp1252", "iso8859-15"})
_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"RIFF", "application/octet-stream"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\xd0\xcf\x11\xe0", "application/msword"),
)
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
_XML_DECL = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_CONTROL = frozenset(range(0, 32)) - {9, 10, 12, 13, 27}
#: Every byte but the control bytes: ``bytes.translate`` deleting these leaves only the control
#: bytes, counted in C rather than byte by byte in Python (this runs on every response).
_NOT_CONTROL = bytes(sorted(set(range(256)) - _CONTROL))


def media_type(content_type_header: str | None) -> str:
    """``"text/html; charset=UTF-8"`` → ``"text/html"``; missing → ``""``."""
    if not content_type_header:
        return ""
    return content_type_header.split(";", 1)[0].strip().lower()


def is_text_type(media: str) -> bool:
    """Media types that are decoded into text (HTML, XHTML, XML, RSS/Atom, plain text)."""
    return media in TEXT_TYPES or (media.startswith("application/") and media.endswith("+xml"))


def sniff_binary(body: bytes) -> str | None:
    """Return a media type when ``body`` is clearly not text, whatever its label says.

    Looks for file signatures and for control bytes (NUL and friends) in the first 4 KiB; text
    in UTF-16/32 is recognised by its byte-order mark and not counted as binary.
    """
    head = body[:4096]
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return None
    for magic, media in _MAGIC:
        if head.startswith(magic):
            return media
    controls = len(head.translate(None, _NOT_CONTROL))
    if b"\x00" in head or (head and controls / len(head) > 0.05):
        return "application/octet-stream"
    return None


def header_charset(content_type_header: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type header, if any."""
    if not content_type_header:
        return None
    for param in content_type_header.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def declared_charset(body: bytes, content_type_header: str | None) -> str | None:
    """The charset a response declares: HTTP header, then HTML meta, then XML declaration."""
    for candidate in (
        header_charset(content_type_header),
        _first_group(_META_CHARSET, body[:8192]),
        _first_group(_XML_DECL, body[:512].lstrip()),
    ):
        codec = _codec_name(candidate)
        if codec:
            return codec
    return None


def decode_body(body: bytes, content_type_header: str | None) -> tuple[str, str]:
    """Decode ``body`` following the module's charset rule; return ``(text, codec name)``."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, errors="replace"), codec
    declared = declared_charset(body, content_type_header)
    utf8 = _strict_utf8(body)
    if declared in _LATIN or declared is None:
        if utf8 is not None and (declared is None or _UTF8_MULTIBYTE.search(body)):
            return utf8, "utf-8"
        return body.decode("cp1252", errors="replace"), "cp1252"
    if declared == "utf-8":
        if utf8 is not None:
            return utf8, "utf-8"
        if not _UTF8_MULTIBYTE.search(body):
            return body.decode("cp1252", errors="replace"), "cp1252"
    return body.decode(declared, errors="replace"), declared


def _strict_utf8(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _first_group(pattern: re.Pattern[bytes], data: bytes) -> str | None:
    match = pattern.search(data)
    return match.group(1).decode("ascii") if match else None


def _codec_name(label: str | None) -> str | None:
    """Python's canonical codec name for a charset label, or None when unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return "cp1252" if name in ("latin-1", "iso8859-1") else name
