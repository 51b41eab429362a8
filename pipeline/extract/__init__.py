"""Extraction: from one fetched HTML page to title, date, author, contacts and main text.

:func:`extract_page` is the entry point of the batch, the CLI and re-extraction: it first asks
:mod:`.listing` whether the page is a listing of teasers (a blog front page, an archive) and
returns its links as a :class:`Listing`, and otherwise the document as :class:`Extracted`.
:func:`extract` skips that question, for callers that know they hold a document.

The page is parsed once and cleaned in steps (:mod:`.page`): invisible elements, then teaser
boxes of other posts, then furniture (navigation, banners, share and comment boxes), and side
columns only once the contacts, date and author have been read from the page. One module per
concern answers: :mod:`.contacts`, :mod:`.metadata` (title, author, kind, language),
:mod:`.dates` and :mod:`.text`. The contact block and the byline are cut out of the tree once
they have been read, before the main text is taken, so that neither ends up in the text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from lxml.html import HtmlElement

from pipeline.config import Selectors
from pipeline.extract import dates, listing, metadata, page, text
from pipeline.extract.contacts import Contact, extract_contacts
from pipeline.extract.dates import STOCKHOLM, DateValue, find_date, parse_swedish_date
from pipeline.extract.listing import Listing
from pipeline.extract.page import ExtractionError

__all__ = [
    "Contact",
    "DateValue",
    "Extracted",
    "ExtractionError",
    "Listing",
    "extract",
    "extract_page",
    "find_date",
    "parse_swedish_date",
]


@dataclass
class Extracted:
    """What a page says about itself, and its main text.

    ``published`` is ISO 8601 at the precision the page gives (``date_precision``: "minute",
    "day" or "month"); ``date_kind`` is "published" or "updated" when the page says which.
    ``text`` holds paragraphs separated by a blank line; headings and list items are
    paragraphs of their own.
    """

    title: str | None
    published: str | None
    date_precision: str | None
    date_kind: str | None
    author: str | None
    text: str
    language: str | None
    contacts: list[Contact] = field(default_factory=list)
    kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (contacts as dicts)."""
        return dataclasses.asdict(self)


def extract_page(
    html: str,
    url: str | None = None,
    selectors: Selectors | None = None,
    *,
    fetched_at: datetime | None = None,
) -> Extracted | Listing:
    """A listing page's links, or else the document (see :func:`extract`).

    A page where the source's ``body`` selector finds text is a document whatever teasers
    it shows: what a person looked up for the site beats the heuristic.
    """
    root = page.parse_html(html)
    page.drop_invisible(root)
    teasers = listing.find_teasers(root, url)
    found = listing.as_listing(root, url, teasers, selectors)
    if found is not None:
        return found
    return _document(root, teasers, url, selectors, fetched_at)


def extract(
    html: str,
    url: str | None = None,
    selectors: Selectors | None = None,
    *,
    fetched_at: datetime | None = None,
) -> Extracted:
    """Extract one page as a document; raise :class:`ExtractionError` when it holds no text.

    ``fetched_at`` anchors relative dates ("igår") and rules out dates after the fetch; a naive
    datetime is taken as Swedish time. Without it, relative dates are left unresolved.
    """
    root = page.parse_html(html)
    page.drop_invisible(root)
    return _document(root, listing.find_teasers(root, url), url, selectors, fetched_at)


def _document(
    root: HtmlElement,
    teasers: listing.TeaserGroups,
    url: str | None,
    selectors: Selectors | None,
    fetched_at: datetime | None,
) -> Extracted:
    selectors = selectors or Selectors()
    today = _local_date(fetched_at)
    declared = page.declared_language(root)
    listing.drop_teasers(root, teasers, selectors)
    page.drop_boilerplate(page.body_of(root))
    # Contacts first: a source may list its contact box under ``remove`` to keep it out of the
    # text, and the names in it must not be mistaken for the author.
    contacts = extract_contacts(root)
    page.remove_selected(root, selectors.remove)

    title = metadata.find_title(root, selectors)
    date_value = dates.find_date(root, selectors, today)
    author, byline = metadata.find_author(root, selectors)
    kind = metadata.find_kind(root, selectors)
    if byline is not None:
        page.remove(byline)
    # Side columns go only now: they hold no text of the document, but a theme may show the
    # date or the author there.
    page.drop_sidebars(root)

    body = text.main_text(root, selectors, url=url, title=title, today=today)
    where = f" at {url}" if url else ""
    if not body:
        raise ExtractionError(f"no main text found in the page{where}")
    if not text.looks_like_text(body):
        raise ExtractionError(f"the page{where} holds binary data, not text")
    return Extracted(
        title=title,
        published=date_value.value if date_value else None,
        date_precision=date_value.precision if date_value else None,
        date_kind=date_value.kind if date_value else None,
        author=author,
        text=body,
        language=metadata.detect_language(body, declared),
        contacts=contacts,
        kind=kind,
    )


def _local_date(moment: datetime | None) -> date | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(STOCKHOLM)
    return moment.date()
