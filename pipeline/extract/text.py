"""The main text of a page, as paragraphs.

A cascade, most specific first:

1. the source's ``selectors.body`` (what a person looked up for that site beats any heuristic);
2. ``trafilatura`` in precision mode, asked for XML so that headings and list items stay
   separate paragraphs, and in its fast mode: its own fallbacks (readability, jusText) cost a
   third of its time, and step 3 plays their part. Its paragraphs are then aligned with the
   page's own blocks, and what precision mode drops from inside the article is put back:
   headings (interview questions on Sitevision pages), lists and tables between two kept
   paragraphs, and a lead paragraph that sits in its own container between the headline and
   the body (Sitevision portlets, agency templates);
3. the element with the most ``<p>`` text, for pages trafilatura gives up on, and for pages
   where most of its output matches no block of the page: it has then merged the navigation
   and the article of a table layout into one run of text.

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
#: Below this share of trafilatura's characters found verbatim in the page's blocks, its output
#: is a merge of regions rather than the article, and the largest block of paragraphs is used.
_MIN_ALIGNED = 0.5
_CELL_TAGS = frozenset(("td", "th"))
#: A lead is a full sentence or more; shorter lines between headline and body are metadata.
_LEAD_MIN_CHARS = 80
_NOT_LEAD = re.compile(r"caption|bildtext|credit|byline|author|meta|date|datum|share|tag")


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
        paragraphs = _from_trafilatura(root, url, selectors)
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


def _from_trafilatura(
    root: HtmlElement, url: str | None, selectors: Selectors | None = None
) -> list[str]:
    """trafilatura's paragraphs, repaired against the page (see the module docstring)."""
    paragraphs = _trafilatura_paragraphs(root, url)
    if not paragraphs:
        return []
    blocks = page.blocks(page.body_of(root))
    positions = _align(paragraphs, blocks)
    matched = sum(len(p) for p, at in zip(paragraphs, positions, strict=True) if at is not None)
    if matched < _MIN_ALIGNED * sum(len(p) for p in paragraphs):
        return _from_largest_block(root) or paragraphs
    paragraphs, positions = _restore_lead(root, selectors, paragraphs, positions, blocks)
    paragraphs = _fill_gaps(paragraphs, positions, blocks)
    return _restore_headings(root, paragraphs)


def _trafilatura_paragraphs(root: HtmlElement, url: str | None) -> list[str]:
    try:
        xml = trafilatura.extract(
            copy.deepcopy(root),
            url=url,
            favor_precision=True,
            fast=True,
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
    return [p for p in paragraphs if p]


def _align(paragraphs: list[str], blocks: list[page.Block]) -> list[int | None]:
    """For each paragraph, the index of the page block it came from, in document order.

    A table row ("cell | cell") is matched by its first cell. A paragraph that matches no
    block (trafilatura merged or split blocks) gets ``None``.
    """
    positions: list[int | None] = []
    start = 0
    for paragraph in paragraphs:
        flat = paragraph.replace("\n", " ")
        found = None
        for index in range(start, len(blocks)):
            block = blocks[index]
            if block.text == flat or (
                block.tag in _CELL_TAGS and flat.startswith(block.text + " |")
            ):
                found = index
                break
        positions.append(found)
        if found is not None:
            start = found + 1
    return positions


def _fill_gaps(
    paragraphs: list[str], positions: list[int | None], blocks: list[page.Block]
) -> list[str]:
    """Put back headings, list items and tables that lie between two kept paragraphs.

    Only structure inside one region of the page counts (the two paragraphs share an ancestor
    below ``<body>``), and a list item that is nothing but a link is navigation, not text.
    """
    body = blocks[0].element.getroottree().getroot().find("body") if blocks else None
    kept_tables = {_table_of(blocks[at]) for at in positions if at is not None} - {None}
    out: list[str] = []
    previous: int | None = None
    for paragraph, at in zip(paragraphs, positions, strict=True):
        if at is not None and previous is not None and at - previous > 1:
            region = _common_ancestor(blocks[previous].element, blocks[at].element)
            if region is not None and region is not body:
                out.extend(_structure(blocks[previous + 1 : at], kept_tables))
        out.append(paragraph)
        if at is not None:
            previous = at
    return out


def _structure(gap: list[page.Block], kept_tables: set[HtmlElement]) -> list[str]:
    restored: list[str] = []
    done_tables: set[HtmlElement] = set()
    for block in gap:
        table = _table_of(block)
        if table is not None:
            if table not in kept_tables and table not in done_tables:
                restored.extend(_table_rows(table))
                done_tables.add(table)
        elif (
            block.tag in page.HEADING_TAGS
            or (block.tag == "li" and not _only_links(block))
            or _quote_attribution(block)
        ):
            restored.append(block.text)
    return restored


def _quote_attribution(block: page.Block) -> bool:
    """The ``<footer>`` of a quote, which names who said it."""
    quoted = any(a.tag == "blockquote" for a in block.element.iterancestors())
    return block.tag == "footer" and quoted


def _table_of(block: page.Block) -> HtmlElement | None:
    if block.tag not in _CELL_TAGS:
        return None
    return next((a for a in block.element.iterancestors() if a.tag == "table"), None)


def _table_rows(table: HtmlElement) -> list[str]:
    rows = []
    for row in table.iter("tr"):
        cells = [page.element_text(c) for c in row if c.tag in _CELL_TAGS]
        if any(cells):
            rows.append(" | ".join(c for c in cells if c))
    return rows


def _only_links(block: page.Block) -> bool:
    linked = " ".join(page.element_text(a) for a in block.element.iter("a"))
    return len(linked) >= len(block.text) - 2


def _common_ancestor(first: HtmlElement, second: HtmlElement) -> HtmlElement | None:
    ancestors = set(first.iterancestors())
    return next((a for a in second.iterancestors() if a in ancestors), None)


def _restore_lead(
    root: HtmlElement,
    selectors: Selectors | None,
    paragraphs: list[str],
    positions: list[int | None],
    blocks: list[page.Block],
) -> tuple[list[str], list[int | None]]:
    """Put back lead paragraphs between the headline and the first kept paragraph after it.

    Candidates are sentences of some length in the same region as the headline and the body,
    outside figures, captions and bylines; what :func:`clean_paragraphs` would drop anyway
    (date lines, kind labels) is left to it. Returns the paragraphs and their block positions.
    """
    title = page.title_element(root, selectors)
    start = next(
        (
            i
            for i, b in enumerate(blocks)
            if b.element is title or title in b.element.iterancestors()
        ),
        None,
    )
    if start is None:
        return paragraphs, positions
    after = next((n for n, at in enumerate(positions) if at is not None and at > start), None)
    if after is None:
        return paragraphs, positions
    first = positions[after]
    region = _common_ancestor(title, blocks[first].element)
    if region is None or region is page.body_of(root):
        return paragraphs, positions
    lead = [i for i in range(start + 1, first) if _is_lead(blocks[i], region)]
    return (
        paragraphs[:after] + [blocks[i].text for i in lead] + paragraphs[after:],
        positions[:after] + lead + positions[after:],
    )


def _is_lead(block: page.Block, region: HtmlElement) -> bool:
    text = block.text
    if len(text) < _LEAD_MIN_CHARS or not text.rstrip("”\"'»)").endswith((".", "!", "?")):
        return False
    ancestors = [block.element, *block.element.iterancestors()]
    if region not in ancestors:
        return False
    for element in ancestors[: ancestors.index(region)]:
        if element.tag in ("figure", "figcaption", "a") or _NOT_LEAD.search(
            page.classes_and_id(element)
        ):
            return False
    return not _only_links(block)


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
#: "« Till nyhetsarkivet", "Tillbaka till startsidan": links back to where the reader came from.
_BACK_LINK = re.compile(
    r"^[«‹←<\s]*(?:tillbaka\s+)?till\s+(?:nyhetsarkivet|arkivet|startsidan|nyhetslistan"
    r"|alla nyheter|nyheter|toppen|sidans topp)[\s.»›→>]*$",
    re.I,
)
_NAVIGATION_LINE_MAX = 60
#: "Pressmeddelande från Arbetsmarknadsdepartementet och Finansdepartementet": who issued it.
_FROM_LINE_MAX = 150
#: A kind word in its definite form opening a line about where the text was published
#: ("Debattartikeln publicerades i Svenska Dagbladet den 14 november 2023.").
_DEFINITE_KIND = re.compile(
    r"^\W*(?:pressmeddelandet|debattartikeln|artikeln|krönikan|repliken|insändaren|nyheten)"
    r"(?![\wåäö])",
    re.I,
)
_LEFTOVER_LABELS = re.compile(r"(?i:cest|cet|utc|kl)\.?|[\W_]+")
_METADATA_LINE_MAX = 100
_DATE_LINE_WORD_MAX = 15
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
    if len(paragraph) <= _NAVIGATION_LINE_MAX and _BACK_LINK.match(paragraph):
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
        if kind_of_label(rest) or _DEFINITE_KIND.match(rest):
            rest = re.sub(r"^\W*\w+(?: release)?", "", rest)
        # What may stay beside a date: separators, "kl.", and at most one word ("Sidan
        # uppdaterades 2023-06-16", a dateline "Stockholm 12 maj 2023").
        words = _LEFTOVER_LABELS.sub(" ", rest).split()
        return len(words) <= 1 and sum(len(w) for w in words) <= _DATE_LINE_WORD_MAX
    if not near_top or kind_of_label(paragraph) is None:
        return False
    return len(paragraph) <= 60 or (
        len(paragraph) <= _FROM_LINE_MAX and _FROM_LINE.match(paragraph) is not None
    )


_FROM_LINE = re.compile(r"^\W*\w+(?: release)? (?:från|from) ", re.I)
