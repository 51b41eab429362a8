"""Publication dates: Swedish date expressions and a cascade over the page's date sources.

``dateparser`` and ``htmldate`` were tried first and both fall short on the pages we follow.
dateparser gives "februari 2017" the day of the month of its reference date (a day the page
never stated), and returns nothing for "Publicerad: 24 maj, 2020", "Senast uppdaterad
2017-02-27 16:10" or "i förrgår". htmldate turns "Publicerat i februari 2017" into 2017-01-01 and
"Publicerad: 24 maj, 2020" into 2020-01-01 (and finds nothing in fast mode), takes the newest
date of a "Fler nyheter" sidebar, and cannot tell a publication date from an update. Our own
regular expressions over a Swedish month table are short, predictable and keep the precision
the page actually gives: minute, day or month, never more.

Values are Swedish wall-clock time without a zone ("2023-05-26T05:15"), as the pages show them;
machine-readable datetimes with a zone are converted to Europe/Stockholm first so that both
kinds of source give the same value for the same moment.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal
from zoneinfo import ZoneInfo

from lxml.html import HtmlElement

from pipeline.config import Selectors
from pipeline.extract import page

log = logging.getLogger(__name__)

STOCKHOLM = ZoneInfo("Europe/Stockholm")

Precision = Literal["minute", "day", "month"]
Kind = Literal["published", "updated"]


@dataclass(frozen=True)
class DateValue:
    """A date as precise as the page gives it.

    ``value`` is ISO 8601: ``"2023-05-26T05:15"`` (minute), ``"2019-04-25"`` (day) or
    ``"2017-02"`` (month). ``kind`` is ``"published"`` or ``"updated"`` when the page says which,
    else ``None``.
    """

    value: str
    precision: Precision
    kind: Kind | None = None

    def after(self, today: date) -> bool:
        """True when the date lies after ``today`` (a publication date cannot)."""
        if self.precision == "month":
            return self.value > today.isoformat()[:7]
        return self.value[:10] > today.isoformat()


@dataclass(frozen=True)
class DateMatch:
    """A date found in a text: its value and the span it covers, label included."""

    value: DateValue
    start: int
    end: int
    labelled: bool


# --------------------------------------------------------------------------- Swedish text

_MONTHS = {
    "januari": 1,
    "februari": 2,
    "mars": 3,
    "april": 4,
    "maj": 5,
    "juni": 6,
    "juli": 7,
    "augusti": 8,
    "september": 9,
    "oktober": 10,
    "november": 11,
    "december": 12,
    # English, for the English-language releases of Swedish press rooms
    "january": 1,
    "february": 2,
    "march": 3,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "october": 10,
}
_ABBREVIATIONS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "okt": 10,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_ALL_MONTHS = {**_MONTHS, **_ABBREVIATIONS}


def _alternation(words: dict[str, int]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


_MONTH = rf"(?P<month>{_alternation(_ALL_MONTHS)})(?![a-zåäö])\.?"
#: Month-only dates use full names: "jul 2019" is more often Christmas than July.
_FULL_MONTH = rf"(?P<month>{_alternation(_MONTHS)})(?![a-zåäö])"
_TIME = (
    r"(?:,?\s*(?:kl\.?|klockan|at)?\s*(?P<hour>[01]?\d|2[0-3])[:.](?P<minute>[0-5]\d)"
    r"(?::[0-5]\d)?(?:\s*(?P<ampm>am|pm)(?![a-z]))?)?"
)
_ISO = re.compile(
    r"(?<![\d-])(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"(?:(?:T|\s+(?:kl\.?\s*)?)(?P<hour>[01]?\d|2[0-3])[:.](?P<minute>[0-5]\d)"
    r"(?::(?P<second>[0-5]\d)(?:[.,]\d+)?)?\s*(?P<zone>Z|[+-]\d{2}:?\d{2}(?!\d))?)?(?!\d)",
    re.IGNORECASE,
)
_DAY_MONTH_YEAR = re.compile(
    rf"(?<![\d.])(?P<day>[0-3]?\d)(?::?[ea])?\.?\s+{_MONTH},?\s+(?P<year>\d{{4}})(?!\d){_TIME}",
    re.IGNORECASE,
)
_MONTH_DAY_YEAR = re.compile(
    rf"(?<![a-zåäö]){_MONTH}\s+(?P<day>[0-3]?\d)(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})(?!\d){_TIME}",
    re.IGNORECASE,
)
_MONTH_YEAR = re.compile(rf"(?<![a-zåäö]){_FULL_MONTH},?\s+(?P<year>\d{{4}})(?!\d)", re.IGNORECASE)
_RELATIVE = re.compile(
    rf"(?<![a-zåäö])(?P<relative>i\s?förrgår|i\s?går|i\s?dag|yesterday|today)(?![a-zåäö]){_TIME}",
    re.IGNORECASE,
)
_DAYS_AGO = re.compile(r"(?<![a-zåäö])för\s+(?P<days>\d{1,2})\s+dagar\s+sedan", re.IGNORECASE)
_RELATIVE_DAYS = {"iförrgår": 2, "igår": 1, "idag": 0, "yesterday": 1, "today": 0}

#: Patterns in priority order: where two overlap, the earlier (more specific) one wins.
_PATTERNS = (_ISO, _DAY_MONTH_YEAR, _MONTH_DAY_YEAR, _RELATIVE, _DAYS_AGO, _MONTH_YEAR)

_LABEL = re.compile(
    r"(?P<updated>(?:senast\s+)?(?:uppdaterad|uppdaterat|uppdaterades|ändrad|ändrades|reviderad)"
    r"|(?:last\s+)?(?:updated|modified))"
    r"|(?P<published>publicerad|publicerat|publicerades|publiceringsdatum|publ\.|skapad|skapat"
    r"|published|posted)",
    re.IGNORECASE,
)
_LABEL_WINDOW = 40
_KIND_RANK = {"published": 0, None: 1, "updated": 2}


def parse_swedish_date(text: str, *, today: date | None = None) -> DateValue | None:
    """The publication date a short text states, or ``None``.

    Handles ISO dates and datetimes (with zones), "25 april 2019", "24 maj, 2020",
    "3 feb. 2021", "Publicerat i februari 2017" (month precision: no day is invented),
    English "May 26, 2023", and "igår"/"idag"/"i förrgår" relative to ``today`` (unresolved
    without it). When the text holds several dates, a "Publicerad" one beats an unlabelled one,
    which beats an "Uppdaterad" one; among equals the first wins.
    """
    matches = find_dates(text, today=today)
    if not matches:
        return None
    return min(matches, key=lambda m: (_KIND_RANK[m.value.kind], m.start)).value


def find_dates(text: str, *, today: date | None = None) -> list[DateMatch]:
    """Every date in ``text`` with its span, in order, each labelled by the words before it.

    A relative date ("i dag") only counts when it is labelled, has a time, or stands alone:
    "I dag samlas föreningarna" is a sentence, not a date line.
    """
    spans: list[tuple[int, int, re.Match[str]]] = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if not any(start < e and s < end for s, e, _ in spans):
                spans.append((start, end, match))
    spans.sort(key=lambda item: item[0])
    found: list[DateMatch] = []
    previous_end = 0
    for start, end, match in spans:
        gap_start = max(previous_end, start - _LABEL_WINDOW)
        labels = list(_LABEL.finditer(text, gap_start, start))
        label = labels[-1] if labels else None
        kind: Kind | None = None
        if label:
            kind = "updated" if label.group("updated") else "published"
        value = _value_of(match, kind, today)
        previous_end = end
        if value is None:
            continue
        if _is_relative(match) and not (label or _has_time(match) or _stands_alone(text, match)):
            continue
        found.append(DateMatch(value, label.start() if label else start, end, label is not None))
    return found


def strip_dates(text: str, *, today: date | None = None) -> str | None:
    """``text`` without its dates and their labels, or ``None`` when it holds no date."""
    matches = find_dates(text, today=today)
    if not matches:
        return None
    for match in reversed(matches):
        text = text[: match.start] + " " + text[match.end :]
    return page.normalize_space(text)


def _is_relative(match: re.Match[str]) -> bool:
    return "relative" in match.re.groupindex or "days" in match.re.groupindex


def _has_time(match: re.Match[str]) -> bool:
    return "hour" in match.re.groupindex and match.group("hour") is not None


def _stands_alone(text: str, match: re.Match[str]) -> bool:
    rest = text[: match.start()] + text[match.end() :]
    return len(re.sub(r"[\W_]+", "", rest)) <= 3


def _value_of(match: re.Match[str], kind: Kind | None, today: date | None) -> DateValue | None:
    groups = match.groupdict()
    if groups.get("relative") or groups.get("days"):
        if today is None:
            return None
        if groups.get("days"):
            day = today - timedelta(days=int(groups["days"]))
        else:
            word = re.sub(r"\s", "", groups["relative"]).lower()
            day = today - timedelta(days=_RELATIVE_DAYS[word])
        return _build(day.year, day.month, day.day, groups.get("hour"), groups.get("minute"), kind)
    month = _month_number(groups["month"])
    year = int(groups["year"])
    if groups.get("day") is None:
        if not 1900 < year < 2100:
            return None
        return DateValue(f"{year:04d}-{month:02d}", "month", kind)
    hour = groups.get("hour")
    if hour is not None and groups.get("ampm"):
        hour = str(int(hour) % 12 + (12 if groups["ampm"].lower() == "pm" else 0))
    return _build(
        year, month, int(groups["day"]), hour, groups.get("minute"), kind, groups.get("zone")
    )


def _month_number(token: str) -> int:
    if token.isdigit():
        return int(token)
    return _ALL_MONTHS[token.lower().rstrip(".")]


def _build(
    year: int,
    month: int,
    day: int,
    hour: str | int | None,
    minute: str | int | None,
    kind: Kind | None,
    zone: str | None = None,
) -> DateValue | None:
    """Validate the parts and format them; midnight is read as "no time given"."""
    if not 1900 < year < 2100:
        return None
    try:
        moment = datetime(year, month, day, int(hour or 0), int(minute or 0))
    except ValueError:
        return None
    if hour is not None and zone:
        offset = "+00:00" if zone.upper() == "Z" else zone
        aware = datetime.fromisoformat(moment.isoformat() + _colon_offset(offset))
        moment = aware.astimezone(STOCKHOLM).replace(tzinfo=None)
    if hour is None or (moment.hour == 0 and moment.minute == 0):
        return DateValue(moment.strftime("%Y-%m-%d"), "day", kind)
    return DateValue(moment.strftime("%Y-%m-%dT%H:%M"), "minute", kind)


def _colon_offset(offset: str) -> str:
    return offset if ":" in offset else f"{offset[:3]}:{offset[3:]}"


# --------------------------------------------------------------------------- machine values


def parse_machine_date(raw: str, kind: Kind | None = None) -> DateValue | None:
    """A date from an attribute or metadata field: ISO 8601, RFC 2822, or Swedish text."""
    raw = raw.strip()
    match = _ISO.match(raw)
    if match:
        return _value_of(match, kind, None)
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        moment = None
    if moment is not None:
        if moment.tzinfo is not None:
            moment = moment.astimezone(STOCKHOLM).replace(tzinfo=None)
        return _build(moment.year, moment.month, moment.day, moment.hour, moment.minute, kind)
    value = parse_swedish_date(raw)
    return DateValue(value.value, value.precision, kind or value.kind) if value else None


# --------------------------------------------------------------------------- the cascade


def find_date(
    tree: HtmlElement, selectors: Selectors | None = None, today: date | None = None
) -> DateValue | None:
    """The document's date: selector, JSON-LD, meta tags, ``<time>``, then text near the title.

    The first source that gives a publication date (or an unlabelled one) wins. An update date
    is only returned when no source anywhere gives anything else, and then with
    ``kind="updated"``. Dates after ``today`` (the fetch date) are ignored: they are event dates,
    not publication dates.
    """
    title = page.title_element(tree, selectors)
    layers = (
        _selector_dates(tree, selectors, today),
        _json_ld_dates(tree),
        _meta_dates(tree),
        _element_dates(tree, title),
        _text_dates(tree, title, today),
    )
    updated: DateValue | None = None
    for layer in layers:
        for candidate in layer:
            if today is not None and candidate.after(today):
                continue
            if candidate.kind != "updated":
                return candidate
            updated = updated or candidate
    return updated


def _selector_dates(
    tree: HtmlElement, selectors: Selectors | None, today: date | None
) -> Iterator[DateValue]:
    for element in page.select(tree, selectors.date if selectors else None):
        raw = element.get("datetime") or element.get("content")
        value = parse_machine_date(raw) if raw else None
        value = value or parse_swedish_date(page.element_text(element), today=today)
        if value:
            yield value


_ARTICLE_TYPES = {
    "article",
    "newsarticle",
    "blogposting",
    "report",
    "opinionnewsarticle",
    "analysisnewsarticle",
    "reportagenewsarticle",
    "socialmediaposting",
    "scholarlyarticle",
    "pressrelease",
}
_NOT_THE_DOCUMENT = {"comment", "imageobject", "person", "organization", "answer", "question"}


def _json_ld_dates(tree: HtmlElement) -> Iterator[DateValue]:
    objects = [o for o in json_ld_objects(tree) if not (_types(o) & _NOT_THE_DOCUMENT)]
    objects.sort(key=lambda o: not (_types(o) & _ARTICLE_TYPES))
    for key, kind in (("datePublished", "published"), ("dateCreated", "published")):
        for obj in objects:
            if isinstance(obj.get(key), str) and (value := parse_machine_date(obj[key], kind)):
                yield value
    for obj in objects:
        if isinstance(obj.get("dateModified"), str):
            value = parse_machine_date(obj["dateModified"], "updated")
            if value:
                yield value


def json_ld_objects(tree: HtmlElement) -> list[dict]:
    """Every JSON object in the page's JSON-LD scripts, ``@graph`` members included."""
    found: list[dict] = []
    for script in tree.iter("script"):
        if "ld+json" not in (script.get("type") or "").lower() or not script.text:
            continue
        text = script.text.strip().removeprefix("<!--").removesuffix("-->")
        try:
            data = json.loads(text, strict=False)
        except ValueError:
            log.debug("skipping unreadable JSON-LD block")
            continue
        _collect(data, found)
    return found


def _collect(data: object, found: list[dict]) -> None:
    if isinstance(data, list):
        for item in data:
            _collect(item, found)
    elif isinstance(data, dict):
        found.append(data)
        for key in ("@graph", "mainEntity", "mainEntityOfPage"):
            if isinstance(data.get(key), list | dict):
                _collect(data[key], found)


def _types(obj: dict) -> set[str]:
    value = obj.get("@type", ())
    values = value if isinstance(value, list) else [value]
    return {v.lower() for v in values if isinstance(v, str)}


_META_PUBLISHED = (
    "article:published_time",
    "og:published_time",
    "og:article:published_time",
    "article:published",
    "datepublished",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date.created",
    "dcterms.created",
    "dc.date",
    "dcterms.date",
    "date",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "publication_date",
    "parsely-pub-date",
    "sailthru.date",
    "citation_publication_date",
)
_META_UPDATED = (
    "article:modified_time",
    "og:updated_time",
    "datemodified",
    "dc.date.modified",
    "dcterms.modified",
    "last-modified",
    "lastmod",
)


def _meta_dates(tree: HtmlElement) -> Iterator[DateValue]:
    for names, kind in ((_META_PUBLISHED, "published"), (_META_UPDATED, "updated")):
        for name in names:
            raw = page.meta_content(tree, name)
            value = parse_machine_date(raw, kind) if raw else None
            if value:
                yield value


#: ``<time>``, microdata, and hAtom's ``<abbr class="published" title="2021-03-18T20:15+01:00">``
#: (Blogger, old WordPress themes), whose visible text is often only the time of day.
_ELEMENT_DATES = (
    ".//time | .//*[@itemprop='datePublished' or @itemprop='dateModified' "
    "or @itemprop='dateCreated'] | .//*[@title][contains(concat(' ', @class, ' '), ' published ')"
    " or contains(concat(' ', @class, ' '), ' updated ')]"
)


def _element_dates(tree: HtmlElement, title: HtmlElement | None) -> Iterator[DateValue]:
    """``<time>`` and microdata dates inside the article, nearest to the title first."""
    root = page.article_root(tree, title)
    distance = _distance_from(root, title)
    for element in sorted(root.xpath(_ELEMENT_DATES), key=distance):
        kind = _element_kind(element)
        raw = element.get("datetime") or element.get("content")
        value = parse_machine_date(raw, kind) if raw else None
        if value is None and element.get("title"):
            value = parse_machine_date(element.get("title"), kind)
        if value is None and page.element_text(element):
            value = parse_machine_date(page.element_text(element), kind)
        if value:
            yield value


def _distance_from(root: HtmlElement, anchor: HtmlElement | None):
    order = {element: index for index, element in enumerate(root.iter())}
    origin = order.get(anchor, 0)
    return lambda element: abs(order.get(element, 0) - origin)


def _element_kind(element: HtmlElement) -> Kind | None:
    prop = (element.get("itemprop") or "").lower()
    marks = page.classes_and_id(element)
    if prop in ("datepublished", "datecreated") or "published" in marks or "entry-date" in marks:
        return "published"
    if prop == "datemodified" or "updated" in marks or "modified" in marks:
        return "updated"
    labels = list(_LABEL.finditer(_text_before(element)))
    if labels:
        return "updated" if labels[-1].group("updated") else "published"
    return None


def _text_before(element: HtmlElement, limit: int = 60, levels: int = 2) -> str:
    """The visible text just before ``element`` within its nearest ancestors."""
    parts: list[str] = []
    current = element
    for _ in range(levels):
        for sibling in current.itersiblings(preceding=True):
            parts.append((sibling.text_content() or "") + (sibling.tail or ""))
        parent = current.getparent()
        if parent is None:
            break
        parts.append(parent.text or "")
        if sum(len(p) for p in parts) >= limit:
            break
        current = parent
    return page.normalize_space(" ".join(reversed(parts)))[-limit:]


_TEXT_LINE_LIMIT = 150
_UNLABELLED_REST_LIMIT = 30


def _text_dates(
    tree: HtmlElement, title: HtmlElement | None, today: date | None
) -> Iterator[DateValue]:
    """Dates in short lines of the page, labelled ones first, then by distance to the title.

    An unlabelled date only counts on a line that is mostly that date ("2023-05-26 05:15
    Pressmeddelande"), not in a sentence that happens to contain one.
    """
    lines = page.blocks(page.body_of(tree))
    anchor = _title_block(lines, title)
    candidates: list[tuple[int, int, DateValue]] = []
    for index, block in enumerate(lines):
        text = block.text
        if len(text) > _TEXT_LINE_LIMIT:
            continue
        matches = find_dates(text, today=today)
        for match in matches:
            if match.labelled or _rest_is_short(text, matches):
                rank = _KIND_RANK[match.value.kind]
                candidates.append((rank, abs(index - anchor), match.value))
    candidates.sort(key=lambda c: (c[0], c[1]))
    yield from (value for _, _, value in candidates)


def _title_block(lines: list[page.Block], title: HtmlElement | None) -> int:
    if title is None:
        return 0
    for index, block in enumerate(lines):
        if block.element is title or title in block.element.iterancestors():
            return index
    return 0


def _rest_is_short(text: str, matches: list[DateMatch]) -> bool:
    for match in reversed(matches):
        text = text[: match.start] + text[match.end :]
    return len(page.normalize_space(text)) <= _UNLABELLED_REST_LIMIT
