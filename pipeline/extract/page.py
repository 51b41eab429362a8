"""Parsing a fetched page and stripping what is never part of a document.

Every other module of :mod:`pipeline.extract` works on the tree this module returns. Cleaning
happens once, here, so that the date, author, contact and text finders all see the same page
without cookie banners, share buttons, comment threads, related-links boxes, navigation and
site-wide headers and footers. Those regions carry dates, names and phone numbers that belong
to other documents (a related post's date, a commenter's name, the switchboard number), which
is exactly what misleads generic extractors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector
from lxml.html import HtmlElement, HTMLParser, document_fromstring

from pipeline.config import Selectors

log = logging.getLogger(__name__)

#: Pages are cut to this many characters before parsing, after the bodies of scripts, styles
#: and inline SVG are dropped (a press room can carry a megabyte of inline JSON state before
#: the article). What is left of a real press release or blog post is far below this; anything
#: bigger is a listing, a data dump or junk, and parsing it whole would stall a batch worker.
MAX_HTML_CHARS = 800_000
_CODE_TAGS = ("script", "style", "svg")

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
#: Soft hyphens, zero-width spaces and joiners, word joiners and byte-order marks: dropped.
_INVISIBLE_CHARS = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff]")

#: Elements whose content is never readable text. ``script`` is handled separately because
#: JSON-LD metadata lives in ``<script type="application/ld+json">``.
_INVISIBLE_TAGS = (
    "style",
    "noscript",
    "template",
    "svg",
    "math",
    "canvas",
    "iframe",
    "object",
    "embed",
    "video",
    "audio",
    "button",
    "input",
    "select",
    "textarea",
    "dialog",
)
#: Text meant for screen readers only ("Kategorier", "skriver:") is not part of the document.
_HIDDEN_CLASSES = re.compile(
    r"(?:^|\s)(?:screen-reader-text|sr-only|visually-?hidden|visuallyhidden)(?:\s|$)",
    re.IGNORECASE,
)
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)

#: Fragments of class or id values that mark page furniture on the CMSs we follow (Mynewsdesk,
#: WordPress with Jetpack/Yoast/Elementor, Sitevision, EPiServer). Matched as substrings,
#: lower-cased; an element that holds the page's ``<h1>`` or most of its text is never removed.
_BOILERPLATE_MARKERS = (
    "cookie",
    "consent",
    "gdpr",
    "onetrust",
    "cookiebot",
    "share",
    "sharing",
    "social-",
    "addtoany",
    "comment",
    "respond",
    "disqus",
    "related",
    "relaterat",
    "breadcrumb",
    "brodsmul",
    "skip-link",
    "skiplink",
    "feedback",
    "newsletter",
    "subscribe",
    "prenumer",
    "pagination",
    "post-navigation",
    "nav-links",
    "tags",
    "author-bio",
    "author-box",
    "author-info",
    "about-author",
    "navbar",
    "menu",
    "toolbar",
    "puff-list",
    "jp-relatedposts",
    "sd-like",
)
_BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "search", "dialog", "alertdialog"}
_BOILERPLATE_TAGS = ("nav", "form", "menu")
#: Headers and footers are site chrome only outside the article: inside it, ``<header>`` holds
#: the headline, date and byline that the metadata finders need.
_CHROME_TAGS = ("header", "footer")
#: A class or id token that ends in "header"/"footer" ("site-footer", "newsroom-header"), or in
#: the short and Swedish forms ("page-foot", "sidfot"), not a BEM part of one
#: ("material-header__meta" is the article's date line).
_CHROME_TOKEN = re.compile(
    r"(?:^|[\s])(?:[\w-]*[-_])?(?:header|footer|foot|sidfot|sidhuvud)(?=\s|$)"
)
#: Side columns: never the document, but they hold contact boxes, so they are removed only after
#: the contacts have been read (:func:`drop_sidebars`). A class token names one when one of its
#: parts is a sidebar word ("column-aside", "blog-sidebar-wrapper"), unless it is a layout
#: modifier of the page ("has-sidebar", "right-sidebar": the wrapper of article and sidebar).
_SIDEBAR_WORDS = frozenset(("sidebar", "aside", "sidospalt", "hogerspalt", "högerspalt"))
_LAYOUT_MODIFIERS = frozenset(("has", "no", "with", "without", "is", "left", "right", "full"))
#: Elements that stand for one entry as ``<article>`` does: hAtom ``hentry`` (Blogger and old
#: WordPress themes) and schema.org microdata for articles and blog posts.
_ENTRY_CLASS = re.compile(r"(?:^|\s)h-?entry(?:\s|$)")
_ENTRY_ITEMTYPE = re.compile(r"schema\.org/(?:\w*Article|BlogPosting|Report)\b", re.IGNORECASE)

#: Headings that introduce a box of links to other pages rather than a part of the document.
_BOILERPLATE_HEADING = re.compile(
    r"^(?:relaterat(?: innehåll)?|relaterade(?: \w+)?|fler (?:nyheter|inlägg|artiklar|goda exempel"
    r"|exempel|pressmeddelanden)|senaste (?:nytt|nyheterna|inläggen|pressmeddelandena)"
    r"|läs (?:också|även|mer)|liknande inlägg|populära inlägg|arkiv|kategorier|etiketter|taggar"
    r"|ämnen|nyckelord|regioner|dela(?: sidan| artikeln| det här| detta)?|prenumerera\b.*"
    r"|följ oss|sidan är en del av|ansvariga|kommentarer|\d+ (?:svar|kommentarer)\b.*"
    r"|lämna (?:ett svar|en kommentar)|skriv en kommentar|var (?:den här sidan|det här|sidan)"
    r" till hjälp|fick du .*|related(?: \w+)?|share(?: this)?|more news|read more)[\s:?!.]*$",
    re.IGNORECASE,
)

#: Block-level elements: a change of block starts a new paragraph or line.
BLOCK_TAGS = frozenset(
    ("address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
     "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
     "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
     "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul")
)  # fmt: skip
HEADING_TAGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
_SKIP_IN_TEXT = frozenset(("script", "style", "head", "title", "meta", "link", "img", "br"))


class ExtractionError(ValueError):
    """Nothing usable could be extracted from a page; the message says why."""


# --------------------------------------------------------------------------- text helpers


def normalize_space(text: str) -> str:
    """Collapse runs of white space (including no-break and thin spaces) and drop soft hyphens.

    Line breaks are kept: callers decide whether a line break is a paragraph boundary.
    ``str.split`` does the collapsing: it knows Unicode's spaces and runs in C, and this is
    called for every text node of every page.
    """
    if not text.isascii():
        text = _INVISIBLE_CHARS.sub("", text)
    if "\n" not in text:  # most calls: one line, no list to build
        return " ".join(text.split())
    return "\n".join(filter(None, (" ".join(line.split()) for line in text.split("\n"))))


def element_text(element: HtmlElement) -> str:
    """All text below ``element`` on one line, with whitespace normalised."""
    return normalize_space(" ".join(element.itertext())).replace("\n", " ")


def classes_and_id(element: HtmlElement) -> str:
    """The ``class`` and ``id`` values of ``element``, lower-cased, for marker matching."""
    return f"{element.get('class') or ''} {element.get('id') or ''}".lower()


# --------------------------------------------------------------------------- parsing


def parse_html(html: str | bytes) -> HtmlElement:
    """Parse a page leniently; raise :class:`ExtractionError` when there is no document at all.

    The input is cut to :data:`MAX_HTML_CHARS` first and control characters are removed,
    because libxml2 rejects some of them and a binary file served as ``text/html`` should end
    as a clear error rather than a crash. The text is handed to lxml as UTF-8 bytes so that an
    XML declaration with another encoding inside a Python ``str`` does not make lxml refuse it.
    libxml2's default depth limit (256) stays on, which keeps the recursive walks here safe.
    """
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    html = _CONTROL_CHARS.sub("", _without_code(html)[:MAX_HTML_CHARS])
    if not html.strip():
        raise ExtractionError("the page is empty")
    parser = HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True)
    try:
        root = document_fromstring(html.encode("utf-8", errors="replace"), parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise ExtractionError(f"the page could not be parsed as HTML ({exc})") from None
    if root is None or not isinstance(root, HtmlElement):
        raise ExtractionError("the page could not be parsed as HTML")
    return root


def _without_code(html: str) -> str:
    """``html`` with the bodies of ``<script>``, ``<style>`` and ``<svg>`` emptied, in one pass.

    JSON-LD scripts are kept: they carry dates and authors. A plain scan with ``str.find`` is
    used instead of a regular expression so that unclosed tags cannot make it quadratic.
    """
    lower = html.lower()
    parts: list[str] = []
    position = 0
    while True:
        found = [(lower.find(f"<{tag}", position), tag) for tag in _CODE_TAGS]
        found = [(index, tag) for index, tag in found if index >= 0]
        if not found:
            break
        start, tag = min(found)
        opening_end = lower.find(">", start)
        closing = lower.find(f"</{tag}", opening_end)
        if opening_end < 0 or closing < 0:
            break
        keep = "ld+json" in lower[start:opening_end]
        parts.append(html[position : closing if keep else opening_end + 1])
        position = closing
    parts.append(html[position:])
    return "".join(parts)


def body_of(root: HtmlElement) -> HtmlElement:
    """The ``<body>`` element, or the root when the parser produced none."""
    body = root.find("body")
    return body if body is not None else root


# --------------------------------------------------------------------------- CSS selectors


@lru_cache(maxsize=256)
def _compile(selector: str) -> CSSSelector | None:
    try:
        return CSSSelector(selector)
    except (SelectorError, SyntaxError, ValueError) as exc:
        log.warning("ignoring invalid CSS selector %r from sources.yaml: %s", selector, exc)
        return None


def select(root: HtmlElement, selector: str | None) -> list[HtmlElement]:
    """Elements matching a per-source CSS selector; an invalid selector matches nothing.

    An invalid selector is a mistake in ``sources.yaml``: it is logged once and the generic
    rules take over, so one typo does not stop a whole source from being extracted.
    """
    if not selector:
        return []
    compiled = _compile(selector)
    if compiled is None:
        return []
    return [e for e in compiled(root) if isinstance(e, HtmlElement)]


def remove(element: HtmlElement) -> None:
    """Remove ``element`` but keep its tail text, which belongs to the parent."""
    if element.getparent() is not None:
        element.drop_tree()


# --------------------------------------------------------------------------- cleaning


def remove_selected(root: HtmlElement, selectors: Iterable[str]) -> None:
    """Remove the elements a source lists under ``selectors.remove``."""
    for selector in selectors:
        for element in select(root, selector):
            remove(element)


def drop_invisible(root: HtmlElement) -> None:
    """Empty scripts (JSON-LD stays) and remove what a browser would not show."""
    for script in root.iter("script"):
        if "ld+json" not in (script.get("type") or "").lower():
            script.text = None
    doomed = list(root.iter(*_INVISIBLE_TAGS))
    doomed += [
        e
        for e in body_of(root).iter()
        if isinstance(e, HtmlElement)
        and (
            e.get("hidden") is not None
            or _HIDDEN_CLASSES.search(e.get("class") or "")
            or _DISPLAY_NONE.search(e.get("style") or "")
        )
    ]
    for element in doomed:
        remove(element)


def drop_boilerplate(container: HtmlElement) -> None:
    """Remove navigation, banners, share/comment/related boxes and site headers and footers.

    Elements that hold the page's ``<h1>``, an ``<article>``/``<main>``, or more than 40 % of the
    text are protected: a theme that calls its article wrapper ``page-header`` or wraps the whole
    page in an ASP.NET ``<form>`` must not lose its content.
    """
    total = max(len(element_text(container)), 1)
    stack = [c for c in reversed(container) if isinstance(c, HtmlElement)]
    while stack:
        element = stack.pop()
        if removable_furniture(element, total):
            remove(element)
            continue
        stack.extend(c for c in reversed(element) if isinstance(c, HtmlElement))
    document = container.getroottree().getroot()
    for heading in list(container.iter(*HEADING_TAGS)):
        if heading.tag == "h1" or heading.getroottree().getroot() is not document:
            continue
        if _BOILERPLATE_HEADING.match(element_text(heading)):
            _remove_section(heading, total)


def is_furniture(element: HtmlElement) -> bool:
    """Whether ``element`` is page furniture by its tag, role, class or id.

    A ``<footer>`` inside a quote or figure is the quote's attribution, and headers and footers
    inside the document are its own header and footer; neither is site chrome.
    """
    if element.tag in _BOILERPLATE_TAGS or (element.get("role") or "") in _BOILERPLATE_ROLES:
        return True
    marks = classes_and_id(element)
    if any(marker in marks for marker in _BOILERPLATE_MARKERS):
        return True
    if element.tag in _CHROME_TAGS or _CHROME_TOKEN.search(marks):
        return not _has_ancestor(element, ("article", "main", "blockquote", "figure"))
    return False


def removable_furniture(element: HtmlElement, total_chars: int) -> bool:
    """Whether :func:`drop_boilerplate` removes ``element`` from a page of ``total_chars``."""
    return is_furniture(element) and not _protected(element, total_chars, _is_semantic(element))


def drop_sidebars(root: HtmlElement) -> None:
    """Remove side columns (see :func:`is_sidebar`) that do not hold the document.

    Called after the contact box, date and byline have been read: press rooms put the contact
    box in the sidebar, and some themes the date.
    """
    body = body_of(root)
    total = max(len(element_text(body)), 1)
    stack = [c for c in reversed(body) if isinstance(c, HtmlElement)]
    while stack:
        element = stack.pop()
        if is_sidebar(element) and not _protected(element, total):
            remove(element)
            continue
        stack.extend(c for c in reversed(element) if isinstance(c, HtmlElement))


def is_sidebar(element: HtmlElement) -> bool:
    """A side column: sidebar-classed, ``role="complementary"``, or an ``<aside>`` outside the
    document (an ``<aside>`` inside an ``<article>`` is usually the article's fact box)."""
    if element.get("role") == "complementary" or any(
        _is_sidebar_token(token) for token in classes_and_id(element).split()
    ):
        return True
    return element.tag == "aside" and not _has_ancestor(element, ("article",))


def _is_sidebar_token(token: str) -> bool:
    if "widget-area" in token:
        return True
    parts = [part for part in re.split(r"[-_]+", token) if part]
    return (
        bool(parts) and parts[0] not in _LAYOUT_MODIFIERS and not _SIDEBAR_WORDS.isdisjoint(parts)
    )


def _is_semantic(element: HtmlElement) -> bool:
    """``<nav>``, ``<header>``, ``<footer>`` say what they are; class names only suggest it."""
    return element.tag in ("nav", "header", "footer", "menu") or element.get("role") in (
        "navigation",
        "banner",
        "contentinfo",
    )


def _protected(element: HtmlElement, total_chars: int, semantic: bool = False) -> bool:
    if element.tag in ("html", "body", "main", "article", "h1") or is_entry(element):
        return True
    for tag in ("h1", "article", "main"):
        if element.find(f".//{tag}") is not None:
            return True
    if element.find(".//*[@role='main']") is not None:
        return True
    if any(is_entry(e) for e in element.iterdescendants() if isinstance(e, HtmlElement)):
        return True
    return not semantic and len(element_text(element)) > 0.4 * total_chars


def _remove_section(heading: HtmlElement, total_chars: int) -> None:
    """Remove a boilerplate heading with the box it introduces.

    When the heading opens its parent (a ``<div class="x"><h2>Relaterat</h2>…</div>`` box) the
    parent goes; otherwise the heading and its following siblings up to the next heading.
    """
    parent = heading.getparent()
    first_child = next((c for c in parent if isinstance(c, HtmlElement)), None)
    if first_child is heading and not _protected(parent, total_chars):
        remove(parent)
        return
    level = int(heading.tag[1])
    doomed = [heading]
    for sibling in heading.itersiblings():
        if not isinstance(sibling, HtmlElement):
            continue
        if sibling.tag in HEADING_TAGS and int(sibling.tag[1]) <= level:
            break
        if sibling.find(".//h1") is not None:
            break
        doomed.append(sibling)
    for element in doomed:
        remove(element)


# --------------------------------------------------------------------------- blocks of text


@dataclass(frozen=True)
class Block:
    """One block of visible text (a paragraph, heading, list item or table cell).

    ``lines`` keeps ``<br>`` line breaks, which matter for contact cards; ``element`` is the
    innermost block element the text came from; ``tag`` is its tag name.
    """

    lines: tuple[str, ...]
    element: HtmlElement
    tag: str

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def blocks(container: HtmlElement, *, mailto_addresses: bool = False) -> list[Block]:
    """Split the visible text below ``container`` into blocks, in document order.

    With ``mailto_addresses`` a ``mailto:`` link is replaced by its address, so that the link
    text "e-post till Anna Ek" becomes an address the contact parser can use.
    """
    return list(iter_blocks(container, mailto_addresses=mailto_addresses))


def iter_blocks(container: HtmlElement, *, mailto_addresses: bool = False) -> Iterator[Block]:
    """:func:`blocks` lazily, for callers that only need the first few."""
    buffer: list[str] = []
    yield from _walk(container, container, buffer, mailto_addresses)
    yield from _flush(buffer, container)


def _walk(
    element: HtmlElement, owner: HtmlElement, buffer: list[str], mailto: bool
) -> Iterator[Block]:
    tag = element.tag if isinstance(element.tag, str) else ""
    is_block = tag in BLOCK_TAGS
    if is_block:
        yield from _flush(buffer, owner)
        owner = element
    if tag == "br":
        buffer.append("\n")
    elif mailto and tag == "a" and (element.get("href") or "").lower().startswith("mailto:"):
        address = element.get("href")[7:].split("?")[0].strip()
        buffer.append(f"\n{address}\n" if "@" in address else " ")
    elif tag and tag not in _SKIP_IN_TEXT:
        if element.text:
            buffer.append(element.text)
        for child in element:
            yield from _walk(child, owner, buffer, mailto)
    if is_block:
        yield from _flush(buffer, owner)
    if element.tail:
        buffer.append(element.tail)


def _flush(buffer: list[str], owner: HtmlElement) -> list[Block]:
    if not buffer:
        return []
    text = normalize_space("".join(buffer))
    buffer.clear()
    return [Block(tuple(text.split("\n")), owner, owner.tag)] if text else []


# --------------------------------------------------------------------------- page structure


def meta_content(root: HtmlElement, *names: str) -> str | None:
    """The first non-empty ``<meta>`` content whose name, property or itemprop is in ``names``."""
    wanted = {n.lower() for n in names}
    found: dict[str, str] = {}
    for meta in root.iter("meta"):
        key = meta.get("name") or meta.get("property") or meta.get("itemprop") or ""
        key = key.strip().lower() or (meta.get("http-equiv") or "").strip().lower()
        if key not in wanted or key in found:
            continue
        content = normalize_space(meta.get("content") or "")
        if content:
            found[key] = content
    return next((found[n.lower()] for n in names if n.lower() in found), None)


def title_element(root: HtmlElement, selectors: Selectors | None = None) -> HtmlElement | None:
    """The element holding the document's title: the source's selector, else the best ``<h1>``.

    An ``<h1>`` that holds the site's name or logo (old WordPress themes, Blogger) is not a title.
    With several ``<h1>``, the one inside ``<article>``/``<main>`` wins, then the one whose text
    also appears in ``<title>``. Without a usable ``<h1>``, the ``<h2>``/``<h3>`` that the page's
    ``og:title`` or ``<title>`` names is the title (older sites use ``<h2>`` for headlines).
    """
    chosen = select(root, selectors.title if selectors else None)
    if chosen and element_text(chosen[0]):
        return chosen[0]
    site_name = (meta_content(root, "og:site_name") or "").lower()
    headings = [
        h for h in body_of(root).iter("h1") if element_text(h) and not _names_the_site(h, site_name)
    ]
    if not headings:
        return _heading_named_in_head(root)
    if len(headings) == 1:
        return headings[0]
    inside = [h for h in headings if _has_ancestor(h, ("article", "main"))]
    if inside:
        return inside[0]
    page_title = (root.findtext(".//title") or "").lower()
    matching = [h for h in headings if element_text(h).lower() in page_title]
    return (matching or headings)[0]


def _names_the_site(heading: HtmlElement, site_name: str) -> bool:
    """An ``<h1>`` with the site's name, a logo, or only a link to the front page."""
    text = element_text(heading)
    if text.lower() == site_name or re.search(r"site-title|logo", classes_and_id(heading)):
        return True
    links = heading.findall(".//a")
    if len(links) != 1 or element_text(links[0]) != text:
        return False
    return urlsplit(links[0].get("href") or "").path in ("", "/")


_HEAD_TITLE_SEPARATOR = re.compile(r"\s+[|–—\-·»]\s+|:\s+")


def _heading_named_in_head(root: HtmlElement) -> HtmlElement | None:
    """The first ``<h2>``/``<h3>`` whose text is the ``og:title`` or a part of ``<title>``."""
    page_title = normalize_space(root.findtext(".//title") or "").replace("\n", " ")
    names = {page_title.lower(), *(p.lower() for p in _HEAD_TITLE_SEPARATOR.split(page_title))}
    names.add((meta_content(root, "og:title", "twitter:title") or "").lower())
    names.discard("")
    for heading in body_of(root).iter("h2", "h3"):
        if element_text(heading).lower() in names:
            return heading
    return None


def is_entry(element: HtmlElement) -> bool:
    """An element that stands for one article without being an ``<article>`` (hAtom, microdata)."""
    return bool(
        _ENTRY_CLASS.search(element.get("class") or "")
        or _ENTRY_ITEMTYPE.search(element.get("itemtype") or "")
    )


def _has_ancestor(element: HtmlElement, tags: Iterable[str]) -> bool:
    """Whether an ancestor has one of ``tags``; ``role="main"`` and entries count as
    ``main`` and ``article``."""
    tags = set(tags)
    for ancestor in element.iterancestors():
        if ancestor.tag in tags or (ancestor.get("role") == "main" and "main" in tags):
            return True
        if "article" in tags and is_entry(ancestor):
            return True
    return False


def article_root(root: HtmlElement, title: HtmlElement | None) -> HtmlElement:
    """The element most likely to hold the document: the title's ``<article>``, else ``<main>``."""
    if title is not None:
        for ancestor in title.iterancestors():
            if ancestor.tag == "article":
                return ancestor
        for ancestor in title.iterancestors():
            if ancestor.tag == "main" or ancestor.get("role") == "main":
                return ancestor
    for found in root.xpath(".//main | .//*[@role='main'] | .//article"):
        return found
    return body_of(root)


def declared_language(root: HtmlElement) -> str | None:
    """The language the page declares (``<html lang>``, ``og:locale``, ``Content-Language``)."""
    value = (
        root.get("lang")
        or root.get("xml:lang")
        or meta_content(root, "og:locale", "content-language", "dc.language", "language")
    )
    if not value:
        return None
    code = re.split(r"[-_\s,;]", value.strip().lower())[0]
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None
