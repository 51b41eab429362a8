"""Teasers: listing pages to crawl rather than store, and teaser boxes to cut from documents.

A teaser is a small block that points to another page: a linked headline (``<h2><a>…</a></h2>``
or ``<a><h3>…</h3></a>``) or a linked title with a date beside it, usually with an excerpt.
Teasers come in groups of siblings, one per other page. A page whose content is such groups and
little else (a blog front page, a category or month archive, a press room's list of releases)
is a *listing*: the batch adds its links to the frontier instead of storing it as a document. On
a document page the same groups are boxes of other posts ("Fler inlägg", "Aktuellt", a front
page's older posts below the newest one) and are removed before the main text is taken, unless
they sit inside the text itself (a list of linked reports between two paragraphs).

The decision rests on how much of the page's own text is outside teasers, counted in blocks of
at least a sentence that are neither furniture nor link lists. Where anything speaks for a
document (the page declares itself an article, its text starts right under the headline, its
headline links to itself), a short paragraph is enough: wrongly storing a listing costs a junk
document, but wrongly treating a short article as a listing loses it.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

from lxml.html import HtmlElement

from pipeline.config import Selectors
from pipeline.crawl.urls import canonicalize, is_http_url
from pipeline.extract import page
from pipeline.extract.dates import find_dates, json_ld_objects, strip_dates

_TEASER_HEADINGS = ("h2", "h3", "h4", "h5", "h6")
#: A linked title without a heading needs this many words and a date in its item.
_MIN_TITLE_WORDS = 3
_MAX_DATED_ITEM_CHARS = 400
#: A block counts as the page's own text from this length (a short sentence).
_OWN_BLOCK_CHARS = 60
#: Own text needed for a document: this much, or one and a half times a typical teaser. A page
#: that declares itself an article, or shows only two teasers (the last page of a listing, or
#: an article with two "read also" boxes), needs only a short paragraph.
_DOCUMENT_CHARS = 400
_SHORT_DOCUMENT_CHARS = 150
_MIN_LISTING_TEASERS = 2
_TEXT_TAGS = frozenset(
    ("p", "ul", "ol", "dl", "blockquote", "table", "pre", "figure", "h1", "h2", "h3", "h4")
)
_ARTICLE_TYPES = {"article", "newsarticle", "blogposting", "reportagenewsarticle", "report"}


@dataclass(frozen=True)
class Teaser:
    """One teaser: the elements it spans (an item, or a heading and what follows it), the
    absolute URL it points to (``None`` when it points back to the page itself), and whether it
    sits beside the page's main column (a sidebar, a related box, a footer)."""

    elements: tuple[HtmlElement, ...]
    url: str | None
    beside: bool = False

    @property
    def chars(self) -> int:
        return sum(len(page.element_text(e)) for e in self.elements)


@dataclass(frozen=True)
class Listing:
    """A page of teasers: the pages it links to (and its next page), not a document."""

    url: str | None
    title: str | None
    links: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data, as ``pipeline extract`` prints it."""
        return {"listing": True, "url": self.url, "title": self.title, "links": list(self.links)}


@dataclass(frozen=True)
class TeaserGroups:
    """The teaser groups of a page and the page's own text outside them.

    The own text is measured only when there are groups: without teasers nothing asks for it.
    """

    groups: tuple[tuple[Teaser, ...], ...]
    own_chars: int
    own_blocks: tuple[page.Block, ...]

    @property
    def teasers(self) -> list[Teaser]:
        return [t for group in self.groups for t in group]

    @property
    def outbound(self) -> list[Teaser]:
        return [t for t in self.teasers if t.url is not None]

    @property
    def evidence(self) -> list[Teaser]:
        """Outbound teasers in the main column: the ones that can make a page a listing."""
        return [t for t in self.outbound if not t.beside]


def find_teasers(root: HtmlElement, url: str | None) -> TeaserGroups:
    """Groups of two or more sibling teasers, and how much own text the page has besides.

    Call on a tree without invisible elements but before furniture is removed, so that teaser
    lists with furniture-like class names ("puff-list") are still seen.
    """
    body = page.body_of(root)
    items = _items(_anchors(body))
    if len(items) < 2:
        return TeaserGroups((), 0, ())
    self_urls = _self_urls(root, url)
    furniture: dict[HtmlElement, bool] = {}
    total = max(len(page.element_text(body)), 1)
    by_parent: dict[HtmlElement, list[Teaser]] = defaultdict(list)
    for anchor, item in items.items():
        parent = item.getparent()
        if parent is not None:
            teaser = _teaser(anchor, item, items, url, self_urls)
            beside = any(
                _furniture(e, total, furniture) or page.is_sidebar(e)
                for e in item.iterancestors()
                if e.tag not in ("body", "html")
            )
            by_parent[parent].append(dataclasses.replace(teaser, beside=beside))
    groups = tuple(_even_spans(tuple(g)) for g in by_parent.values() if len(g) >= 2)
    if not groups:
        # Own text only matters against teasers (is this a listing? is a group inside the
        # text?); most article pages have none, and measuring it walks the whole body.
        return TeaserGroups((), 0, ())
    inside = {e for group in groups for t in group if t.url for e in t.elements}
    own = tuple(_own_blocks(body, inside, total, furniture))
    return TeaserGroups(groups, sum(len(b.text) for b in own), own)


def as_listing(
    root: HtmlElement,
    url: str | None,
    groups: TeaserGroups,
    selectors: Selectors | None = None,
) -> Listing | None:
    """The page as a :class:`Listing`, or ``None`` when it is a document.

    Teasers beside the main column (sidebars, "related" boxes) never make a page a listing,
    and a page needs less text of its own to be a document when there is little evidence
    against it: only two teasers, a declared article, a post whose headline links to the page
    itself, or text right under its headline. Where the source's ``body`` selector finds text
    outside the teasers, the page is a document.
    """
    evidence = groups.evidence
    if len(evidence) < _MIN_LISTING_TEASERS:
        return None
    inside = {e for t in evidence for e in t.elements}
    body = [
        e
        for e in page.select(root, selectors.body if selectors else None)
        if not any(a in inside for a in (e, *e.iterancestors()))
    ]
    if sum(len(page.element_text(e)) for e in body) >= _SHORT_DOCUMENT_CHARS:
        return None
    typical = statistics.median(t.chars for t in evidence)
    title = page.title_element(root)
    short = (
        len(evidence) == _MIN_LISTING_TEASERS
        or _declares_article(root)
        or any(t.url is None for t in groups.teasers)  # a headline linking to this very page
        or _text_under_headline(root, title, groups, evidence)
    )
    needed = _SHORT_DOCUMENT_CHARS if short else _DOCUMENT_CHARS
    if groups.own_chars >= max(needed, 1.5 * typical):
        return None
    links = _unique([t.url for t in groups.outbound if t.url] + _next_pages(root, url))
    return Listing(url, page.element_text(title) if title is not None else None, tuple(links))


def drop_teasers(root: HtmlElement, groups: TeaserGroups, selectors: Selectors | None) -> None:
    """Remove teaser groups that are boxes beside or below the document.

    A group stays when the page's own text runs on both sides of it in the same container (it
    is part of the text), when one of its teasers holds the headline, and when the source's
    own selectors point into it.
    """
    chosen = _selected(root, selectors)
    title = page.title_element(root, selectors)
    for group in groups.groups:
        if _in_text(group, groups.own_blocks):
            continue
        for teaser in group:
            if teaser.url is None:
                continue
            if any(_holds(e, title) or any(_holds(e, c) for c in chosen) for e in teaser.elements):
                continue
            for element in teaser.elements:
                page.remove(element)


# --------------------------------------------------------------------------- finding teasers


def _anchors(body: HtmlElement) -> dict[HtmlElement, HtmlElement]:
    """Teaser anchors (a heading or a titled link) mapped to their link."""
    anchors: dict[HtmlElement, HtmlElement] = {}
    for heading in body.iter(*_TEASER_HEADINGS):
        link = heading.find(".//a[@href]")
        if link is None:
            link = next((a for a in heading.iterancestors("a") if a.get("href")), None)
        if link is not None and _followable(link):
            anchors[heading] = link
    linked = set(anchors.values())
    item_texts: dict[HtmlElement, str] = {}
    for link in body.iter("a"):
        if link in linked or not _followable(link):
            continue
        if link.find(".//h1") is not None or any(
            a.tag in _TEASER_HEADINGS or a.tag == "h1" for a in link.iterancestors()
        ):
            continue
        # Cheapest test first: most links are menu items of one or two words.
        if len(page.element_text(link).split()) < _MIN_TITLE_WORDS:
            continue
        if _dated(link, item_texts) and _titled(link):
            anchors[link] = link
    return anchors


def _followable(link: HtmlElement) -> bool:
    href = (link.get("href") or "").strip()
    return bool(href) and not href.startswith(("#", "mailto:", "tel:", "javascript:"))


def _titled(link: HtmlElement) -> bool:
    """Whether the link text reads as a title: a few words besides any date ("28 april 2019"
    links to the post too, but it is the post's date line, not a teaser)."""
    text = page.element_text(link)
    rest = strip_dates(text)
    return len((text if rest is None else rest).split()) >= _MIN_TITLE_WORDS


def _dated(link: HtmlElement, texts: dict[HtmlElement, str]) -> bool:
    """Whether the link's small surrounding item (``li``, ``div``…) carries a date.

    ``texts`` caches each item's text: a page of a thousand links in one ``<div>`` would
    otherwise join that text a thousand times.
    """
    for ancestor in link.iterancestors():
        if ancestor.tag in page.BLOCK_TAGS:
            if ancestor not in texts:
                texts[ancestor] = page.element_text(ancestor)
            text = texts[ancestor]
            return len(text) <= _MAX_DATED_ITEM_CHARS and bool(find_dates(text))
    return False


def _items(anchors: dict[HtmlElement, HtmlElement]) -> dict[HtmlElement, HtmlElement]:
    """Each anchor's item: its highest ancestor that holds no other anchor."""
    counts: dict[HtmlElement, int] = defaultdict(int)
    for anchor in anchors:
        for ancestor in anchor.iterancestors():
            counts[ancestor] += 1
    items = {}
    for anchor in anchors:
        item = anchor
        for ancestor in anchor.iterancestors():
            if counts[ancestor] > 1 or ancestor.tag in ("body", "html"):
                break
            item = ancestor
        items[anchor] = item
    return items


def _teaser(
    anchor: HtmlElement,
    item: HtmlElement,
    items: dict[HtmlElement, HtmlElement],
    url: str | None,
    self_urls: set[str],
) -> Teaser:
    elements = [item]
    if item.tag in _TEASER_HEADINGS:
        # A flat list (<h2><a/></h2><p>excerpt</p><h2>…): the excerpt is the siblings up to the
        # next teaser or heading.
        starts = set(items.values())
        for sibling in item.itersiblings():
            if not isinstance(sibling, HtmlElement):
                continue
            if sibling in starts or sibling.tag in page.HEADING_TAGS:
                break
            elements.append(sibling)
    link = _link_of(anchor)
    target = _absolute(link.get("href") or "", url)
    if target is not None and canonicalize(target) in self_urls:
        target = None
    return Teaser(tuple(elements), target)


def _even_spans(group: tuple[Teaser, ...]) -> tuple[Teaser, ...]:
    """In a flat list, the last teaser runs on to the end of its container; cut it to the
    length of the others, so that the text after the list is not taken for its excerpt."""
    if len(group) < 2 or group[-1].elements[0].tag not in _TEASER_HEADINGS:
        return group
    longest = max(len(t.elements) for t in group[:-1])
    last = group[-1]
    return (*group[:-1], dataclasses.replace(last, elements=last.elements[:longest]))


def _link_of(anchor: HtmlElement) -> HtmlElement:
    if anchor.tag == "a":
        return anchor
    link = anchor.find(".//a[@href]")
    if link is not None:
        return link
    return next(a for a in anchor.iterancestors("a") if a.get("href"))


def _absolute(href: str, base: str | None) -> str | None:
    target = urljoin(base or "", href.strip()).split("#", 1)[0]
    return target if is_http_url(target) else None


def _self_urls(root: HtmlElement, url: str | None) -> set[str]:
    """The page's own URL and the canonical and ``og:url`` it declares, canonicalised."""
    found = [url]
    found += [link.get("href") for link in root.iter("link") if _rel(link) == {"canonical"}]
    found.append(page.meta_content(root, "og:url"))
    return {
        canonicalize(urljoin(url or "", u))
        for u in found
        if u and is_http_url(urljoin(url or "", u))
    }


def _rel(element: HtmlElement) -> set[str]:
    return set((element.get("rel") or "").lower().split())


def _next_pages(root: HtmlElement, url: str | None) -> list[str]:
    """``rel="next"`` links: the listing's next page is a listing to crawl too."""
    found = []
    for element in root.iter("a", "link"):
        if "next" in _rel(element):
            target = _absolute(element.get("href") or "", url)
            if target:
                found.append(target)
    return found


def _unique(urls: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for url in urls:
        key = canonicalize(url)
        if key not in seen:
            seen.add(key)
            unique.append(url)
    return unique


# --------------------------------------------------------------------------- own text


def _own_blocks(
    body: HtmlElement,
    inside_teasers: set[HtmlElement],
    total: int,
    furniture: dict[HtmlElement, bool],
) -> Iterator[page.Block]:
    """Blocks of at least a sentence outside teasers, furniture and link lists."""
    for block in page.blocks(body):
        if len(block.text) < _OWN_BLOCK_CHARS:
            continue
        chain = [block.element, *block.element.iterancestors()]
        if any(e in inside_teasers for e in chain):
            continue
        if any(_furniture(e, total, furniture) for e in chain):
            continue
        if _linked_chars(block) >= 0.5 * len(block.text):
            continue
        yield block


def _linked_chars(block: page.Block) -> int:
    """Characters of the block's text that are link text (links of nested blocks excluded)."""
    total = 0
    for link in block.element.iter("a"):
        owner = next(
            a for a in link.iterancestors() if a.tag in page.BLOCK_TAGS or a is block.element
        )
        if owner is block.element:
            total += len(page.element_text(link))
    return total


def _furniture(element: HtmlElement, total: int, cache: dict[HtmlElement, bool]) -> bool:
    """Furniture as the cleaning step would judge it, and ``<aside>`` columns."""
    if element not in cache:
        aside = element.tag == "aside" and element.find(".//h1") is None
        cache[element] = aside or page.removable_furniture(element, total)
    return cache[element]


def _text_under_headline(
    root: HtmlElement,
    title: HtmlElement | None,
    groups: TeaserGroups,
    evidence: list[Teaser],
) -> bool:
    """Whether the page's own text starts under its headline, before the first teaser: the
    layout of an article with teaser boxes, not of a listing with an introduction."""
    if title is None or not groups.own_blocks:
        return False
    order = {element: index for index, element in enumerate(root.iter())}
    headline = order.get(title, -1)
    first_teaser = min(order.get(t.elements[0], 0) for t in evidence)
    first_text = min(
        (order.get(b.element, 0) for b in groups.own_blocks if order.get(b.element, 0) > headline),
        default=None,
    )
    return first_text is not None and headline < first_text < first_teaser


def _declares_article(root: HtmlElement) -> bool:
    if (page.meta_content(root, "og:type") or "").lower() == "article":
        return True
    if page.meta_content(root, "article:published_time"):
        return True
    for obj in json_ld_objects(root):
        kinds = obj.get("@type", ())
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if any(isinstance(k, str) and k.lower() in _ARTICLE_TYPES for k in kinds):
            return True
    return False


# --------------------------------------------------------------------------- removal


def _in_text(group: tuple[Teaser, ...], own: tuple[page.Block, ...]) -> bool:
    """Whether own text lies directly in the group's container both before and after it."""
    parent = group[0].elements[0].getparent()
    if parent is None:
        return False
    members = {e for t in group for e in t.elements}
    positions = {child: index for index, child in enumerate(parent)}
    first = min(positions[e] for e in members if e in positions)
    last = max(positions[e] for e in members if e in positions)
    before = after = False
    for block in own:
        child = _child_of(parent, block.element)
        if child is None or child in members or child.tag not in _TEXT_TAGS:
            continue
        before = before or positions[child] < first
        after = after or positions[child] > last
    return before and after


def _child_of(parent: HtmlElement, element: HtmlElement) -> HtmlElement | None:
    if element is parent:
        return None
    current = element
    for ancestor in element.iterancestors():
        if ancestor is parent:
            return current
        current = ancestor
    return None


def _holds(element: HtmlElement, target: HtmlElement | None) -> bool:
    return target is not None and (element is target or element in target.iterancestors())


def _selected(root: HtmlElement, selectors: Selectors | None) -> list[HtmlElement]:
    if selectors is None:
        return []
    chosen = []
    for selector in (selectors.title, selectors.date, selectors.author, selectors.body):
        chosen += page.select(root, selector)
    return chosen
