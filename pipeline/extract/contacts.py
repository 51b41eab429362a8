"""Contact people: the "Kontaktpersoner" / "Kontakt" / "För mer information" part of a page.

Press releases end with the people journalists should call; analysts use them to see who
speaks for which organisation. The block is parsed into :class:`Contact` records and removed
from the page, so that names, phone numbers and addresses do not end up in the main text (where
they would also be counted as mentions by the NER stage).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml.html import HtmlElement

from pipeline.extract import page
from pipeline.extract.metadata import person_name


@dataclass(frozen=True)
class Contact:
    """One contact person (or an organisation's switchboard when no person is named)."""

    name: str | None = None
    role: str | None = None
    organisation: str | None = None
    email: str | None = None
    phone: str | None = None


_HEADING = re.compile(
    r"^(?:kontaktpersoner|kontaktperson|kontakter|kontakt|kontaktuppgifter|presskontakt(?:er)?|"
    r"mediekontakt(?:er)?|för (?:mer|ytterligare) information(?:,? kontakta)?|mer information|"
    r"ytterligare information|frågor besvaras av|upplysningar(?: lämnas av)?|"
    r"(?:press |media )?contacts?|for more information(?:,? (?:please )?contact)?)[\s:.]*$",
    re.IGNORECASE,
)
#: How a contact line inside the text starts: "För mer information, kontakta …",
#: "Frågor besvaras av …", "Kontakt: …". A bare "Kontakt med hyresvärden …" is a sentence.
_INLINE_LEAD = re.compile(
    r"^(?:(?:för (?:mer|ytterligare) information|mer information|ytterligare information|"
    r"for more information)(?![\wåäö])[\s,:]*(?:(?:vänligen|please)\s+)?"
    r"(?:kontakta|ring|vänd dig till|contact)?(?![\wåäö])|frågor besvaras av|"
    r"upplysningar lämnas av|(?:kontakt|kontaktperson(?:er)?|presskontakt(?:er)?)\s*:)[\s:]*",
    re.IGNORECASE,
)
#: A contact heading is a few words; with the white space of indented markup around them its
#: raw text stays below this.
_MAX_HEADING_RAW_CHARS = 300
_HEADING_TAGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6", "p", "strong", "b", "div", "span",
                           "dt", "th", "legend", "summary"))  # fmt: skip
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
_PHONE = re.compile(
    r"(?<![\w+\-/])(?:\+46|0046)[\s-]*(?:\(0\)[\s-]*)?\d{1,3}(?:[\s-]*\d{1,4}){1,4}(?!\d)"
    r"|(?<![\w+\-/])0\d{1,3}(?:\s*[-–/]\s*|\s)?\d{1,3}(?:[\s-]?\d{2,3}){0,3}(?!\d)"
)
_CONTACT_LABEL = re.compile(
    r"(?<![\wåäö])(?:telefon|tel|tfn|mobil|mobiltelefon|direkt|växel|e-post|epost|e-mail|email|"
    r"mejl|mail|phone|mobile)(?![\wåäö])\.?\s*:?",
    re.IGNORECASE,
)
_URL = re.compile(r"^(?:https?://|www\.)\S+$", re.IGNORECASE)
_INLINE_SEPARATOR = re.compile(r"\s*[,;]\s*|\s+eller\s+|\s+or\s+")
_MAX_SECTION_CHARS = 1500
_MAX_INLINE_CHARS = 400
_LONG_PARAGRAPH = 300
_MAX_SIBLINGS = 10


def extract_contacts(root: HtmlElement) -> list[Contact]:
    """Parse and remove the page's contact sections and "För mer information, kontakta …" lines.

    A section or line is only removed when it yields at least one contact, so that a stray
    "Kontakt" heading inside an article cannot swallow the paragraphs after it.
    """
    body = page.body_of(root)
    contacts: list[Contact] = []
    for heading in _headings(body):
        section = _section(heading)
        lines = [
            line
            for element in section
            for block in page.blocks(element, mailto_addresses=True)
            for line in block.lines
        ]
        found = parse_contact_lines(lines)
        contacts.extend(found)
        for element in section if found else ():
            page.remove(element)
    for block in page.blocks(body, mailto_addresses=True):
        text = block.text
        lead = _INLINE_LEAD.match(text)
        if not lead or len(text) > _MAX_INLINE_CHARS or not _has_details(text):
            continue
        found = parse_contact_lines(_INLINE_SEPARATOR.split(text[lead.end() :]))
        contacts.extend(found)
        if found and len(page.element_text(block.element)) <= _MAX_INLINE_CHARS:
            page.remove(block.element)
    return _unique(contacts)


def _headings(body: HtmlElement) -> list[HtmlElement]:
    """Elements whose whole text is a contact heading, outermost first, links excluded."""
    found: list[HtmlElement] = []
    stack = [c for c in reversed(body) if isinstance(c, HtmlElement)]
    while stack:
        element = stack.pop()
        raw = element.text_content()  # in C; most elements are ruled out by its length alone
        if raw.isspace() or not raw:
            continue
        if (
            element.tag in _HEADING_TAGS
            and len(raw) <= _MAX_HEADING_RAW_CHARS
            and _HEADING.match(page.element_text(element))
            and not _is_link(element)
        ):
            found.append(element)
            continue
        stack.extend(c for c in reversed(element) if isinstance(c, HtmlElement))
    return found


def _is_link(element: HtmlElement) -> bool:
    """A "Kontakt" menu link is not a contact heading; a linked ``<h2>`` still is."""
    if element.tag in page.HEADING_TAGS:
        return False
    return element.find(".//a") is not None or any(a.tag == "a" for a in element.iterancestors())


def _section(heading: HtmlElement) -> list[HtmlElement]:
    """The elements that make up a contact section, heading included.

    A heading that opens a small box (``<div><h2>Kontakt</h2>…</div>``) takes the box; otherwise
    it takes its following siblings up to the next heading or long paragraph. A heading alone in
    its wrapper (``<div class="title"><h2>Kontakt</h2></div>``) looks one level up.
    """
    current = heading
    for _ in range(3):
        parent = current.getparent()
        if parent is None:
            break
        siblings = _following(current)
        first = next((c for c in parent if isinstance(c, HtmlElement)), None)
        if siblings and first is current and _small(parent):
            return [parent]
        if siblings:
            return [current, *siblings]
        if page.element_text(parent) != page.element_text(current):
            break
        current = parent
    return [heading]


def _following(element: HtmlElement) -> list[HtmlElement]:
    siblings: list[HtmlElement] = []
    for sibling in element.itersiblings():
        if not isinstance(sibling, HtmlElement):
            continue
        if sibling.tag in page.HEADING_TAGS or sibling.find(".//h1") is not None:
            break
        if len(page.element_text(sibling)) > _LONG_PARAGRAPH and not _has_details(
            page.element_text(sibling)
        ):
            break
        siblings.append(sibling)
        if len(siblings) >= _MAX_SIBLINGS:
            break
    return siblings


def _small(element: HtmlElement) -> bool:
    if element.tag in ("body", "main", "article", "html") or element.find(".//h1") is not None:
        return False
    return len(page.element_text(element)) <= _MAX_SECTION_CHARS


def _has_details(text: str) -> bool:
    return bool(_EMAIL.search(text) or find_phone(text))


def find_phone(text: str) -> str | None:
    """The first Swedish phone number in ``text``, as written ("040-123 45 67")."""
    for match in _PHONE.finditer(text):
        number = match.group().strip(" -")
        digits = re.sub(r"\D", "", number.replace("(0)", ""))
        if number.startswith(("+", "00")):
            national = digits[2:] if digits.startswith("46") else digits[4:]
            if 7 <= len(national) <= 9:
                return page.normalize_space(number)
        elif 8 <= len(digits) <= 10:
            return page.normalize_space(number)
    return None


@dataclass
class _Draft:
    name: str | None = None
    role: str | None = None
    organisation: str | None = None
    email: str | None = None
    phone: str | None = None

    def reachable(self) -> bool:
        return bool(self.email or self.phone)

    def contact(self) -> Contact | None:
        if self.name or (self.organisation and self.reachable()):
            return Contact(self.name, self.role, self.organisation, self.email, self.phone)
        return None


def parse_contact_lines(lines: list[str]) -> list[Contact]:
    """Group the lines of a contact section into people.

    A new person starts at each line that is a name; the first other text line after a name is
    the role ("Presschef, Hyresgästföreningen" gives a role and an organisation), the next one
    the organisation. Text before any name is the organisation of a switchboard-style entry,
    and so is a text line after a person whose role and number or address are already known
    (a press office listed below the press officer). A heading word right after a name is that
    person's role ("Petter Lund / Presskontakt").
    """
    people: list[Contact] = []
    draft = _Draft()
    for raw in lines:
        line = raw.strip(" ,;.")
        if not line or _URL.match(line):
            continue
        if _HEADING.match(line):
            if draft.name and draft.role is None:
                draft.role = line
            continue
        email = _EMAIL.search(line)
        phone = find_phone(line)
        rest = _without_details(line, email.group() if email else None, phone)
        name, remainder = _split_name(rest) if rest else (None, "")
        complete = draft.name and draft.role is not None and draft.reachable()
        if (name and name != draft.name and (draft.name or draft.reachable())) or (
            not name and remainder and complete
        ):
            _flush(draft, people)
            draft = _Draft()
        draft.name = name or draft.name
        draft.email = draft.email or (email.group().rstrip(".") if email else None)
        draft.phone = draft.phone or phone
        if remainder:
            _add_text(draft, remainder)
    _flush(draft, people)
    return people


def _without_details(line: str, email: str | None, phone: str | None) -> str:
    for detail in (email, phone):
        if detail:
            line = line.replace(detail, " ")
    line = _CONTACT_LABEL.sub(" ", line)
    line = page.normalize_space(line).strip(" ,;:.–-")
    return line if re.search(r"[a-zåäöA-ZÅÄÖ]{2}", line) else ""


def _split_name(text: str) -> tuple[str | None, str]:
    """A leading person's name and the rest: "Sara Lindqvist, processledare" → both parts."""
    name = person_name(text)
    if name is None:
        return None, text
    rest = text[len(name) :].strip(" ,;:–-")
    if rest and not text[len(name) :].lstrip().startswith((",", "(", "–", "-")):
        return None, text
    return name, _PARTY.sub("", rest).strip(" ,;:–-")


#: A politician's party after the name ("Anders Ekström (S), kommunstyrelsens ordförande").
_PARTY = re.compile(r"^\((?:S|M|V|C|L|KD|MP|SD)\)")


def _add_text(draft: _Draft, text: str) -> None:
    if draft.name and draft.role is None:
        role, _, organisation = text.partition(", ")
        draft.role = role.strip()
        if organisation.strip() and draft.organisation is None:
            draft.organisation = organisation.strip()
    elif draft.organisation is None:
        draft.organisation = text


def _flush(draft: _Draft, people: list[Contact]) -> None:
    contact = draft.contact()
    if contact:
        people.append(contact)


def _unique(contacts: list[Contact]) -> list[Contact]:
    seen: set[tuple[str | None, str | None, str | None]] = set()
    unique: list[Contact] = []
    for contact in contacts:
        key = (contact.name, contact.email, contact.phone)
        if key not in seen:
            seen.add(key)
            unique.append(contact)
    return unique
