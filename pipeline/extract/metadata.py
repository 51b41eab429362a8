"""Title, author, document kind and language of a page.

Each finder is a short cascade from the most specific evidence (the source's own CSS selector)
to the most generic (``<title>``), so that a wrong answer can be traced to the step that gave it.
Authors are only accepted when they look like a person's name: press rooms and municipal sites
put the organisation's or the site's name in ``meta name="author"`` and JSON-LD, and an
organisation is not an author.
"""

from __future__ import annotations

import re
from collections import Counter, deque

from lxml.html import HtmlElement

from pipeline.config import Selectors
from pipeline.extract import page
from pipeline.extract.dates import json_ld_objects, strip_dates

# --------------------------------------------------------------------------- title

_TITLE_SEPARATOR = re.compile(r"\s+(?:\||–|—|-|::|»|·)\s+")
#: Words that mark a title segment as a site or organisation name ("Malmö stad").
_SITE_WORDS = re.compile(
    r"(?:\b(?:stad|kommun|region|län|regeringen|regeringskansliet|mynewsdesk|ab)\b|\.se\b|\.com\b)",
    re.IGNORECASE,
)


def find_title(root: HtmlElement, selectors: Selectors | None = None) -> str | None:
    """The document title: selector or ``<h1>``, else ``og:title``, else ``<title>``.

    Site-name suffixes (" | Malmö stad", " - Mynewsdesk", " – Hyresgästföreningen") are removed
    from ``og:title`` and ``<title>``, which both often carry them.
    """
    element = page.title_element(root, selectors)
    if element is not None:
        return page.element_text(element)
    site_names = site_names_of(root)
    for raw in (page.meta_content(root, "og:title", "twitter:title"), root.findtext(".//title")):
        if raw and page.normalize_space(raw):
            return strip_site_name(page.normalize_space(raw).replace("\n", " "), site_names)
    return None


def strip_site_name(title: str, site_names: set[str]) -> str:
    """Remove trailing " | Site name" segments, but not a real title's " – second clause"."""
    while True:
        separators = list(_TITLE_SEPARATOR.finditer(title))
        if not separators:
            return title
        last = separators[-1]
        head, tail = title[: last.start()].strip(), title[last.end() :].strip()
        if not head or not _looks_like_site_name(tail, site_names, last.group().strip()):
            return title
        title = head


def _looks_like_site_name(segment: str, site_names: set[str], separator: str) -> bool:
    """A pipe-separated short tail is a site name; after a dash it must also look like a name."""
    if segment.lower() in site_names or _SITE_WORDS.search(segment):
        return True
    words = segment.split()
    if len(words) > 4:
        return False
    return separator == "|" or all(w[:1].isupper() or w in _TITLE_GLUE for w in words)


_TITLE_GLUE = {"i", "och", "för", "av", "på", "&"}


def site_names_of(root: HtmlElement) -> set[str]:
    """Names the site gives itself: ``og:site_name``, JSON-LD organisations and publishers."""
    names = [page.meta_content(root, "og:site_name", "application-name")]
    for obj in json_ld_objects(root):
        if {"organization", "website", "newsmediaorganization"} & _types(obj):
            names.append(obj.get("name"))
        publisher = obj.get("publisher")
        if isinstance(publisher, dict):
            names.append(publisher.get("name"))
    return {n.strip().lower() for n in names if isinstance(n, str) and n.strip()}


def _types(obj: dict) -> set[str]:
    value = obj.get("@type", ())
    values = value if isinstance(value, list) else [value]
    return {v.lower() for v in values if isinstance(v, str)}


# --------------------------------------------------------------------------- author

_NAME_TOKEN = re.compile(r"^[A-ZÅÄÖÉÜØÆ][a-zåäöéèëüøæáíóúñç'’]+(?:-[A-ZÅÄÖ][a-zåäöéèü]+)?$")
_INITIAL = re.compile(r"^[A-ZÅÄÖ]\.$")
_PARTICLES = {"af", "von", "de", "van", "der", "da", "la", "el", "al", "bin", "di", "du"}
#: Whole words and word endings that make a string an organisation or a job title rather than
#: a person's name ("Redaktionen", "Malmö stad", "Kommunikationschef", "Områdeschef Kvarnbacken").
_NOT_A_NAME_WORD = {
    "ab", "hb", "stad", "region", "län", "sverige", "sweden", "mynewsdesk", "admin", "group",
    "network", "team", "nyheter", "redaktionen", "webbredaktionen", "kommunikation",
}  # fmt: skip
_NOT_A_NAME_ENDING = re.compile(
    r"(?:kommun|förening|föreningen|förbund|förbundet|bolag|bolaget|bostäder|fastigheter|"
    r"redaktion|departementet|verket|myndighet|myndigheten|universitet|universitetet|högskola|"
    r"högskolan|stiftelse|stiftelsen|kansliet|chef|ansvarig|ledare|sekreterare|samordnare|"
    r"handläggare|direktör|ordförande|specialist|strateg|expert|kommunikatör|rådgivare|minister)$",
    re.IGNORECASE,
)
_NAME = r"[A-ZÅÄÖÉ][\w'’.-]*(?:\s+(?:(?:af|von|de|van|der)\s+)?[A-ZÅÄÖÉ][\w'’.-]*){1,3}"
_BYLINE = re.compile(
    r"^(?i:(?:(?:skriven|skrivet|publicerad|publicerat|text|inlägg|debattartikel|krönika|"
    r"artikel|replik|tal)\s+)?(?:av|by|text|skribent|författare|"
    r"(?:text|foto|bild)\s+(?:och|&)\s+(?:text|foto|bild))\s*:?\s+(?:[a-zåäö-]+\s+){0,3}?)"
    rf"(?P<name>{_NAME})"
)
#: Class tokens of byline elements in page builders and themes ("elementor-post-info__item
#: --type-author", "c-article__byline", "post-writer").
_BYLINE_CLASS = re.compile(
    r"(?:^|[-_])(?:author|byline|writer|forfattare|skribent)(?:[-_]name)?$", re.IGNORECASE
)
_BYLINE_SELECTORS = (
    "[rel~='author']",
    "[itemprop='author']",
    ".byline",
    ".author",
    ".post-author",
    ".entry-author",
    ".author-name",
    ".article-author",
    ".writer",
)
_BYLINE_MAX_CHARS = 150


def find_author(
    root: HtmlElement, selectors: Selectors | None = None
) -> tuple[str | None, HtmlElement | None]:
    """The author's name and the byline element it came from (``None`` for metadata).

    The element is returned so that the caller can keep the byline out of the main text.
    Order: the source's selector; byline elements (``rel="author"``, ``.author``, ``.byline``)
    nearest to the title; "av Karin Holm" lines near the title; ``meta name="author"``;
    JSON-LD ``author`` of type Person.
    """
    site_names = site_names_of(root)
    for element in page.select(root, selectors.author if selectors else None):
        name = person_name(_first_line(element), site_names)
        if name:
            return name, element
    title = page.title_element(root, selectors)
    for element in _byline_elements(root, title):
        name = person_name(_byline_name(element), site_names)
        if name:
            return name, _byline_block(element)
    for block in _blocks_near(root, title):
        match = _BYLINE.match(block.text)
        name = person_name(match.group("name"), site_names) if match else None
        if name and len(block.text) <= _BYLINE_MAX_CHARS:
            return name, block.element
    name = person_name(
        page.meta_content(root, "author", "article:author", "dc.creator"), site_names
    )
    if name:
        return name, None
    return _json_ld_author(root, site_names), None


def _byline_elements(root: HtmlElement, title: HtmlElement | None) -> list[HtmlElement]:
    """Small elements marked as bylines, nearest to the title first.

    Size matters: WordPress puts ``author`` in the ``<body>`` class of author archives.
    """
    candidates = [e for selector in _BYLINE_SELECTORS for e in page.select(root, selector)]
    candidates += [
        e
        for e in page.body_of(root).iter()
        if isinstance(e, HtmlElement)
        and any(_BYLINE_CLASS.search(token) for token in (e.get("class") or "").split())
    ]
    found: list[HtmlElement] = []
    for element in candidates:
        if element not in found and len(page.element_text(element)) <= _BYLINE_MAX_CHARS:
            found.append(element)
    order = {element: index for index, element in enumerate(root.iter())}
    origin = order.get(title, 0)
    return sorted(found, key=lambda e: abs(order.get(e, 0) - origin))


def _byline_name(element: HtmlElement) -> str:
    line = _first_line(element)
    match = _BYLINE.match(line)
    return match.group("name") if match else line


def _first_line(element: HtmlElement) -> str:
    lines = [line for block in page.blocks(element) for line in block.lines]
    return lines[0] if lines else ""


def _byline_block(element: HtmlElement) -> HtmlElement:
    """The smallest block around a byline link, so that "av" does not stay behind in the text."""
    current = element
    while current.tag not in page.BLOCK_TAGS and current.getparent() is not None:
        current = current.getparent()
    if len(page.element_text(current)) <= _BYLINE_MAX_CHARS:
        return current
    return element


def _blocks_near(root: HtmlElement, title: HtmlElement | None, radius: int = 6) -> list[page.Block]:
    """Blocks of the article within ``radius`` of the title block, nearest first."""
    before: deque[page.Block] = deque(maxlen=radius)
    after: list[page.Block] = []
    anchor: page.Block | None = None
    for block in page.iter_blocks(page.article_root(root, title)):
        if anchor is None and title is not None and block.element is title:
            anchor = block
        elif anchor is None and title is not None:
            before.append(block)
        else:
            after.append(block)
            if len(after) > radius:
                break
    if anchor is None and title is not None:
        after, before = list(before), deque()
    ordered = [anchor] if anchor is not None else []
    for distance in range(radius + 1):
        if distance < len(before):
            ordered.append(before[-1 - distance])
        if distance < len(after):
            ordered.append(after[distance])
    return ordered


def _json_ld_author(root: HtmlElement, site_names: set[str]) -> str | None:
    for obj in json_ld_objects(root):
        authors = obj.get("author")
        for author in authors if isinstance(authors, list) else [authors]:
            if isinstance(author, dict) and author.get("@type") not in (None, "Person"):
                continue
            raw = author.get("name") if isinstance(author, dict) else author
            name = person_name(raw if isinstance(raw, str) else None, site_names)
            if name:
                return name
    return None


def person_name(raw: str | None, site_names: set[str] | None = None) -> str | None:
    """``raw`` cut down to a person's name ("Karin Holm"), or ``None`` if it is not one.

    A name is two to four capitalised words (particles such as "af" and initials allowed),
    taken up to the first comma, bracket or line break, and not a site or organisation name.
    """
    if not raw:
        return None
    text = re.split(r"[,(|·•\n/]| - | – ", page.normalize_space(raw))[0].strip(" :.")
    if not text or (site_names and text.lower() in site_names):
        return None
    words = text.split()
    if not 2 <= len(words) <= 4:
        return None
    for word in words:
        if word.lower() in _NOT_A_NAME_WORD or _NOT_A_NAME_ENDING.search(word):
            return None
        if not (_NAME_TOKEN.match(word) or _INITIAL.match(word) or word in _PARTICLES):
            return None
    return text


# --------------------------------------------------------------------------- kind

#: Labels that open a line near the title (after any date on it): "Pressmeddelande från …",
#: "2023-05-26 05:15 Pressmeddelande", "Nyhet • 13 feb. 2024".
_KIND_LABELS = (
    ("press_release", ("pressmeddelande", "press release", "pressrelease")),
    ("opinion", ("debattartikel", "debatt", "krönika", "insändare", "replik", "ledare", "opinion")),
    ("blog_post", ("blogginlägg",)),
    ("news", ("nyhet",)),
)
_KIND_LABEL = re.compile(
    r"^\W*(?P<label>"
    + "|".join(word for _, words in _KIND_LABELS for word in words)
    + r")(?![\wåäö])",
    re.IGNORECASE,
)
_KIND_OF_LABEL = {word: kind for kind, words in _KIND_LABELS for word in words}
_KIND_LABEL_MAX_CHARS = 80
_JSON_LD_KINDS = {"blogposting": "blog_post", "opinionnewsarticle": "opinion"}


def find_kind(root: HtmlElement, selectors: Selectors | None = None) -> str | None:
    """The document kind when the page states it: a short label near the title, then metadata.

    "Pressmeddelande" → ``press_release``, "Debattartikel" → ``opinion``, "Nyhet" → ``news``,
    "Blogginlägg" → ``blog_post``; ``DC.type``, then JSON-LD and microdata ``BlogPosting`` are
    used after that.
    """
    title = page.title_element(root, selectors)
    for block in _blocks_near(root, title, radius=4):
        if block.element is title or len(block.text) > _KIND_LABEL_MAX_CHARS:
            continue
        kind = kind_of_label(strip_dates(block.text) or block.text)
        if kind:
            return kind
    kind = kind_of_label(page.meta_content(root, "dc.type", "dcterms.type") or "")
    if kind:
        return kind
    for obj in json_ld_objects(root):
        for value in _types(obj):
            if value in _JSON_LD_KINDS:
                return _JSON_LD_KINDS[value]
    for element in root.iterfind(".//*[@itemtype]"):
        value = (element.get("itemtype") or "").rstrip("/").rsplit("/", 1)[-1].lower()
        if value in _JSON_LD_KINDS:
            return _JSON_LD_KINDS[value]
    return None


def kind_of_label(text: str) -> str | None:
    """The kind a label at the start of ``text`` names ("Pressmeddelande från …")."""
    match = _KIND_LABEL.match(text)
    return _KIND_OF_LABEL[match.group("label").lower()] if match else None


# --------------------------------------------------------------------------- language

#: Frequent function words that tell the languages we meet apart. A full language-identification
#: model would be another dependency and another model file for a question that, on pages from
#: Swedish organisations, is nearly always "Swedish or English?"; short closed-class words answer
#: that reliably from a few sentences. Words shared between languages are left out on purpose.
_FUNCTION_WORDS = {
    "sv": ("och", "att", "är", "inte", "för", "också", "från", "när", "ska", "mycket", "detta",
           "vara", "hur", "sina", "säger", "därför", "något", "även", "mellan", "där", "vad",
           "jag", "till", "ett"),
    "en": ("the", "and", "of", "to", "is", "that", "with", "are", "was", "this", "have", "has",
           "from", "which", "they", "their", "will", "been", "would", "also", "an", "by", "it",
           "in"),
    "da": ("og", "ikke", "af", "også", "fra", "hvor", "være", "bliver", "meget", "hvad", "siger",
           "noget", "mellem", "kun", "jeg"),
    "no": ("og", "ikke", "også", "fra", "hvor", "være", "mye", "hva", "sier", "noe", "mellom",
           "enn", "jeg", "ble"),
    "de": ("und", "die", "das", "ist", "nicht", "mit", "auf", "für", "von", "sich", "auch",
           "eine", "dem", "zu", "wir", "werden"),
    "fi": ("ja", "ei", "että", "ovat", "oli", "myös", "tai", "kun", "mutta", "joka", "hän", "ole",
           "sekä", "kanssa"),
}  # fmt: skip
_MIN_HITS = 5
_WORD = re.compile(r"[a-zåäöæøüéß]+")


def detect_language(text: str, declared: str | None = None) -> str | None:
    """ISO 639-1 code of ``text`` from function-word counts; ``declared`` when the text is unclear.

    The counts decide when the best language has at least five hits and half as many again as
    the runner-up (Danish and Norwegian share many words); otherwise the page's own declaration
    (``<html lang>``) is trusted.
    """
    words = _WORD.findall(text[:20_000].lower())
    scores = Counter()
    for word in words:
        for language, vocabulary in _FUNCTION_WORDS.items():
            if word in vocabulary:
                scores[language] += 1
    ranked = scores.most_common(2)
    if ranked and ranked[0][1] >= _MIN_HITS:
        runner_up = ranked[1][1] if len(ranked) > 1 else 0
        if ranked[0][1] >= 1.5 * runner_up:
            return ranked[0][0]
    return declared
