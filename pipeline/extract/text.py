"""The main text of a page, as paragraphs.

A cascade, most specific first:

1. the source's ``selectors.body`` (what a person looked up for that site beats any heuristic);
2. ``trafilatura`` in precision mode, asked for XML so that headings and list items stay
   separate paragraphs, with the headings it sometimes drops put back (it loses interview
   questions on Sitevision pages);
3. the element with the most ``<p>`` text, for pages trafilatura gives up on.

Whatever the source, the paragraphs then go through the same filter, which drops what generic
extractors keep: the title repeated, date and "Pressmeddelande" lines, "Dela"/"Läs mer" links,
cookie notices, comment counters and photo credits.
"""

from __future__ import annotations

import copy
import logging
import re
from datetime import date

import trafilatura
from lxml import etree
from lxml.html import HtmlElement

from pipeline.config import Selectors
from pipeline.extract import page
from pipeline.extract.dates import strip_dates
from pipeline.extract.metadata import kind_of_label

log = logging.getLogger(__name__)

#: Below this many characters a trafilatura result is compared with the fallback: precision
#: mode sometimes keeps a single sentence of a short municipal news item.
_SHORT_TEXT = 200
#: A heading is matched to the paragraph after it by this much of its text, at least.
_PREFIX_MATCH = 20


def main_text(
    root: HtmlElement,
    selectors: Selectors | None = None,
    *,
    url: str | None = None,
    title: str | None = None,
    today: date | None = None,
) -> str:
    """Paragraphs of the main text joined by blank lines; ``""`` when there is none."""
    paragraphs = _from_selector(root, selectors)
    if not paragraphs:
        paragraphs = _from_trafilatura(root, url)
        if sum(len(p) for p in paragraphs) < _SHORT_TEXT:
            fallback = _from_largest_block(root)
            if sum(len(p) for p in fallback) > sum(len(p) for p in paragraphs):
                paragraphs = fallback
    return "\n\n".join(clean_paragraphs(paragraphs, title=title, today=today))


# --------------------------------------------------------------------------- 1. selector


def _from_selector(root: HtmlElement, selectors: Selectors | None) -> list[str]:
    """Blocks of the elements the source's ``body`` selector names (outermost matches only).

    The tree has already been cleaned of generic furniture and of the source's ``remove``
    selectors by :func:`pipeline.extract.extract`.
    """
    elements = page.select(root, selectors.body if selectors else None)
    outermost = [e for e in elements if not any(a in elements for a in e.iterancestors())]
    return [block.text for element in outermost for block in page.blocks(element)]


# --------------------------------------------------------------------------- 2. trafilatura


def _from_trafilatura(root: HtmlElement, url: str | None) -> list[str]:
    try:
        xml = trafilatura.extract(
            copy.deepcopy(root),
            url=url,
            favor_precision=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            output_format="xml",
        )
    except Exception as exc:  # trafilatura has many internal failure modes; fall back instead
        log.warning("trafilatura failed on %s: %s", url or "a page", exc)
        return []
    if not xml:
        return []
    try:
        document = etree.fromstring(xml.encode("utf-8"))
    except etree.XMLSyntaxError as exc:
        log.warning("unreadable trafilatura output for %s: %s", url or "a page", exc)
        return []
    main = document.find("main")
    paragraphs: list[str] = []
    for element in main if main is not None else ():
        _convert(element, paragraphs)
    return _restore_headings(root, [p for p in paragraphs if p])


def _convert(element: etree._Element, out: list[str]) -> None:
    """Turn one element of trafilatura's XML into paragraphs."""
    if element.tag == "list":
        for item in element.iterchildren("item"):
            out.append(_xml_text(item))
            for nested in item.iterchildren("list"):
                _convert(nested, out)
    elif element.tag == "quote" and element.find("p") is not None:
        for child in element:
            _convert(child, out)
    elif element.tag == "table":
        for row in element.iter("row"):
            cells = [_xml_text(cell) for cell in row.iterchildren("cell")]
            out.append(" | ".join(c for c in cells if c))
    elif element.tag != "graphic":
        out.append(_xml_text(element))


def _xml_text(element: etree._Element) -> str:
    parts = [element.text or ""]
    for child in element:
        if child.tag == "lb":
            parts.append("\n")
        elif child.tag != "list":
            parts.append(_xml_text(child))
        parts.append(child.tail or "")
    return page.normalize_space("".join(parts))


def _restore_headings(root: HtmlElement, paragraphs: list[str]) -> list[str]:
    """Put back subheadings trafilatura dropped, before the paragraph that follows them."""
    present = set(paragraphs)
    for heading in page.body_of(root).iter("h2", "h3", "h4", "h5", "h6"):
        text = page.element_text(heading)
        following = _text_after(heading)
        if not text or text in present or not following:
            continue
        for index, paragraph in enumerate(paragraphs):
            if paragraph == following or (
                len(following) >= _PREFIX_MATCH and paragraph.startswith(following[:60])
            ):
                if index == 0 or paragraphs[index - 1] != text:
                    paragraphs.insert(index, text)
                    present.add(text)
                break
    return paragraphs


def _text_after(heading: HtmlElement) -> str | None:
    current = heading
    for _ in range(2):
        for sibling in current.itersiblings():
            found = page.blocks(sibling) if isinstance(sibling, HtmlElement) else []
            if found:
                return found[0].text
        current = current.getparent()
        if current is None:
            return None
    return None


# --------------------------------------------------------------------------- 3. fallback


def _from_largest_block(root: HtmlElement) -> list[str]:
    """All blocks of the element whose own ``<p>`` children hold the most text."""
    body = page.body_of(root)
    sizes: dict[HtmlElement, int] = {}
    for paragraph in body.iter("p"):
        parent = paragraph.getparent()
        if parent is not None:
            sizes[parent] = sizes.get(parent, 0) + len(page.element_text(paragraph))
    container = max(sizes, key=sizes.__getitem__) if sizes else body
    return [block.text for block in page.blocks(container)]


# --------------------------------------------------------------------------- filtering

_BOILERPLATE_LINES = {
    "dela",
    "dela sidan",
    "dela artikeln",
    "dela det här",
    "dela detta",
    "dela på facebook",
    "dela på linkedin",
    "dela på x",
    "dela via e-post",
    "tweeta",
    "skriv ut",
    "skriv ut sidan",
    "läs mer",
    "läs mer här",
    "läs hela artikeln",
    "läs vidare",
    "tillbaka",
    "till toppen",
    "till sidans topp",
    "relaterat",
    "relaterat innehåll",
    "relaterade inlägg",
    "relaterade nyheter",
    "relaterade artiklar",
    "fler nyheter",
    "gilla",
    "gilla detta",
    "kommentarer",
    "lämna ett svar",
    "lämna en kommentar",
    "skriv en kommentar",
    "share",
    "share this",
    "read more",
    "related",
    "related posts",
    "print",
    "annons",
}
_COOKIE_WORDS = re.compile(r"(?<![\wåäö])(?:kakor|kakorna|cookies?|cookie-?inställningar)", re.I)
#: A paragraph about cookies is a banner only when it asks for consent: an article or an
#: "Om kakor" page that merely mentions cookies stays.
_CONSENT_WORDS = re.compile(
    r"godkänn|acceptera|samtyck|cookieinställningar|inställningar för kakor|"
    r"we use cookies|accept all|consent",
    re.I,
)
_COMMENT_COUNTER = re.compile(
    r"^\d+\s+(?:kommentarer|kommentar|svar|comments?|replies)(?![\wåäö])", re.I
)
_PHOTO_CREDIT = re.compile(r"^(?:foto|bild|photo|illustration)\s*:", re.I)
_LEFTOVER_LABELS = re.compile(r"(?i:cest|cet|utc|kl)\.?|[\W_]+")
_METADATA_LINE_MAX = 100
_COOKIE_NOTICE_MAX = 400
_HEAD_OF_TEXT = 3


def clean_paragraphs(
    paragraphs: list[str], *, title: str | None = None, today: date | None = None
) -> list[str]:
    """Drop empty, repeated and boilerplate paragraphs; normalise whitespace in the rest."""
    kept: list[str] = []
    normalized_title = (title or "").strip().lower()
    for index, raw in enumerate(paragraphs):
        paragraph = page.normalize_space(raw)
        if not paragraph or (kept and kept[-1] == paragraph):
            continue
        near_top = index < _HEAD_OF_TEXT
        if near_top and paragraph.lower() == normalized_title:
            continue
        if _is_boilerplate(paragraph, near_top, today):
            continue
        kept.append(paragraph)
    return kept


_TEXT_CHAR = re.compile(r"[\w\s.,:;!?()\"'”“’«»%&/+–—-]")
_MIN_TEXT_SHARE = 0.85
_ODD_CHAR = re.compile(r"[\x80-\x9f\ufffd\ue000-\uf8ff]")


def looks_like_text(text: str) -> bool:
    """False for binary data decoded as text: too few letters and punctuation, or C1 controls.

    A PDF or image served as ``text/html`` decodes to a soup of Latin-1 symbols that
    would otherwise be stored as a document.
    """
    sample = text[:5000]
    if not sample:
        return False
    odd = len(_ODD_CHAR.findall(sample))
    ordinary = len(_TEXT_CHAR.findall(sample))
    return odd <= len(sample) * 0.01 and ordinary >= len(sample) * _MIN_TEXT_SHARE


def _is_boilerplate(paragraph: str, near_top: bool, today: date | None) -> bool:
    bare = re.sub(r"^[\W_]+|[\W_]+$", "", paragraph).lower()
    if bare in _BOILERPLATE_LINES or _COMMENT_COUNTER.match(paragraph):
        return True
    if len(paragraph) <= 60 and _PHOTO_CREDIT.match(paragraph):
        return True
    if len(paragraph) < _COOKIE_NOTICE_MAX and _is_cookie_notice(paragraph):
        return True
    return len(paragraph) <= _METADATA_LINE_MAX and _is_metadata_line(paragraph, near_top, today)


def _is_cookie_notice(paragraph: str) -> bool:
    return bool(_COOKIE_WORDS.search(paragraph) and _CONSENT_WORDS.search(paragraph))


def _is_metadata_line(paragraph: str, near_top: bool, today: date | None) -> bool:
    """A date line ("Publicerad 6 februari 2020") or a kind label ("Pressmeddelande från …")."""
    rest = strip_dates(paragraph, today=today)
    if rest is not None:
        label = kind_of_label(rest)
        if label:
            rest = re.sub(r"^\W*\w+(?: release)?", "", rest)
        return len(_LEFTOVER_LABELS.sub("", rest)) <= 3
    return near_top and len(paragraph) <= 60 and kind_of_label(paragraph) is not None
