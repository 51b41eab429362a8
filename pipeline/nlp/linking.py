"""From the NER model's mentions in one document to the entities they refer to.

The model finds strings ("Hyresgästföreningens", "Wiking", "Delmos", "Malmös"). This module
decides, inside one document, which real thing each string names, so that the store can count one
organisation, person or place however it is written. What it does, in order:

* **Surface forms.** Quotes and stray punctuation are dropped; the key of a name is its text with
  white space and case folded.
* **Organisations.** The gazetteer is asked first, by exact name, alias or former name (SABO is
  Sveriges Allmännytta), after dropping legal forms ("AB", "(publ)", "i Sverige") and, if still
  unknown, a genitive -s ("Hyresgästföreningens"). "<organisation with branches> <place>" is a
  branch with a parent link (Hyresgästföreningen södra Skåne under Hyresgästföreningen). A
  spelling variant of a gazetteer name is accepted by a token-wise fuzzy match.
  Organisations outside the gazetteer keep their own name, without a leading "Bostadsbolaget"
  and the like, so "Bostadsbolaget Söderhem" and "Söderhem" meet.
* **Abbreviations** defined in the text ("Delegationen mot segregation (Delmos)",
  "MUCF, Myndigheten för …") make the short form a name of the long one, in this document and,
  through the store, in later ones.
* **Genitive.** A final -s is removed only with evidence: the form without it is a known name, the
  text uses it elsewhere, or (organisations) it ends like a Swedish definite noun, "-ens",
  "-ets", "-arnas". "Malmös" is Malmö, but "Borås" and "Vännäs" are kept, and "Kristianstads
  kommun" is the municipality's own name.
* **People.** A surname on its own ("Wiking") is the person with that surname named in full in the
  same document, if there is exactly one. Roles and affiliations are read from the words around
  the name ("Sophia Lövgren, nationell specialist, Hyresgästföreningen", "säger projektledaren
  Karin Holm") and from the page's contact block.
* **Places** are geocoded by :mod:`pipeline.nlp.places` with the document's other mentions as
  evidence. A name the model labelled ORG but which only the place lists know ("Rosengård") is
  relabelled LOC, and the other way round ("Boverket" tagged LOC is an organisation).

Matching against entities of other documents (stable ids, fuzzy matching of names outside the
gazetteer, abbreviations learnt earlier) is the store's part: :mod:`pipeline.nlp.entities`.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol

from rapidfuzz import fuzz

from pipeline.nlp.gazetteer import Gazetteer, Organisation, default_gazetteer
from pipeline.nlp.places import Evidence, Place, Places, default_places

FUZZY_THRESHOLD = 90.0
"""Token similarity (rapidfuzz ratio, 0–100) from which two spellings are one name.

Measured on the hand-made mention set (``bench/entities.py`` sweeps it): its typos score 94–97
("Arbetsförmedlnigen" 94.4, "Söderhemm" 94.1, "Sjunneson" 94.7), its closest different names
89 and less ("Lindkvist"/"Lindqvist" 88.9, "Andersen"/"Andersson" 82.4, "Uppsalahus"/
"Uppsalahem" 80). Pairwise F1 is flat from 85 to 92 and drops above 94, where typos are lost;
90 sits in the middle of the flat part.
"""

MIN_FUZZY_TOKEN = 5
"""Shorter tokens are never fuzzy-matched: "Syd"/"Öst" or "Ek"/"Ek" differ by meaning, not typo."""

LEGAL_FORMS = re.compile(
    r"(?:,?\s+(?:ab|aktiebolag|hb|kb|\(publ\)|ek\.?\s*för\.?|ekonomisk förening|"
    r"ideell förening|i sverige))+$",
    re.IGNORECASE,
)
LEADING_LEGAL = re.compile(r"^(?:ab|aktiebolaget)\s+", re.IGNORECASE)
DESCRIPTORS = re.compile(
    r"^(?:bostadsbolaget|bostadsaktiebolaget|bostads ab|bostadsstiftelsen|fastighetsbolaget|"
    r"fastighets ab|förvaltnings ab|det kommunala bostadsbolaget|allmännyttiga bostadsbolaget)\s+",
    re.IGNORECASE,
)
DEFINITE_GENITIVE = re.compile(r"(?:en|et|na|an)s$")
SURNAME_GENITIVE = re.compile(
    r"(?:son|sen|berg|ström|lund|gren|qvist|kvist|holm|dahl|dal|mark|blad|bäck|man|ling|ell|"
    r"ner|ius|der|ck|in|é)s$"
)
ORGANISATION_WORDS = re.compile(
    r"^(?:bostadsbolaget|bostads ab|stiftelsen|föreningen|förbundet|region|länsstyrelsen|"
    r"studieförbundet|kommunförbundet)\s|\s(?:ab|kommun|stad|förening|föreningen|förbund|"
    r"förbundet|universitet|högskola|myndighet|verket|stiftelse|nätverket|koncernen|"
    r"stadsmission|kommune)$"
)
DIRECTION = re.compile(r"^(?:södra|norra|västra|östra|centrala|inre|yttre|stor-)\s*", re.I)
STRIP_CHARS = " \t\r\n\"'”“‘’»«()[]{}.,:;!?*•–-"
ABBREVIATION = re.compile(r"[A-ZÅÄÖ][A-Za-zÅÄÖåäö&]{1,11}")
SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
MAX_SENTENCE = 400


def fold(text: str) -> str:
    """White space folded, a spaced hyphen closed ("informations - och" → "informations- och")."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" -(?= )", "-", text)


def name_key(text: str) -> str:
    """The case- and space-insensitive key of a name."""
    return fold(text).casefold()


def clean_form(text: str) -> str:
    """The name as written, without surrounding punctuation or the genitive of "MKB:s".

    A closing bracket stays when the name opens it: "Heimstaden AB (publ)".
    """
    form = fold(text).strip(STRIP_CHARS.replace(")", ""))
    while form.endswith(")") and form.count(")") > form.count("("):
        form = form[:-1].strip(STRIP_CHARS.replace(")", ""))
    form = form.lstrip(")")
    return re.sub(r"(?<=\w):s$", "", form)


def strip_legal_form(name: str) -> str:
    """Drop legal forms and "i Sverige": "MKB Fastighets AB" → "MKB Fastighets"."""
    stripped = LEADING_LEGAL.sub("", LEGAL_FORMS.sub("", name))
    return stripped or name


def strip_descriptor(name: str) -> str:
    """Drop a leading "Bostadsbolaget" and the like: "Bostadsbolaget Söderhem" → "Söderhem"."""
    stripped = DESCRIPTORS.sub("", name)
    return stripped or name


def text_key(label: str, form: str) -> str:
    """The key of a name known only from the texts; organisations without legal form or
    leading "Bostadsbolaget", so that "Bostadsbolaget Söderhem AB" and "Söderhem" meet."""
    if label == "ORG":
        return strip_descriptor(strip_legal_form(name_key(form)))
    return name_key(form)


def token_similarity(a: str, b: str) -> float:
    """How alike two names are, token by token; 0 unless they differ in one long token only.

    Comparing whole strings would merge "Fastighetsägarna Syd" with "Fastighetsägarna Öst" (one
    short token apart) and "Anna Larsson" with "Anna Karlsson"; requiring every other token to be
    equal and the differing one to be long keeps typos in and different names out.
    """
    left, right = a.split(), b.split()
    if len(left) != len(right):
        return 0.0
    differing = [(x, y) for x, y in zip(left, right, strict=True) if x != y]
    if not differing:
        return 100.0
    if len(differing) > 1:
        return 0.0
    x, y = differing[0]
    if min(len(x), len(y)) < MIN_FUZZY_TOKEN or x[0] != y[0]:
        return 0.0
    return float(fuzz.ratio(x, y))


@dataclass(frozen=True)
class EntityRef:
    """The entity a mention is linked to, as the store needs it to find or create the row.

    ``origin`` is "gazetteer" (a curated organisation), "place" (a geocoded or known place) or
    "text" (named only in the texts; the store may merge it with a near-identical name).
    """

    label: str
    key: str
    name: str
    origin: str
    parent: EntityRef | None = None
    latitude: float | None = None
    longitude: float | None = None
    municipality: str | None = None


@dataclass(frozen=True)
class LinkedMention:
    """A mention with its entity, its sentence and, for people, role and affiliation.

    ``affiliation`` is the index, in the same document's list, of the organisation mention the
    person is tied to. ``keys`` are further names that should lead to this entity in later
    documents (an abbreviation the text defined).
    """

    start: int
    end: int
    label: str
    text: str
    entity: EntityRef
    form: str
    sentence: str = ""
    role: str | None = None
    affiliation: int | None = None
    keys: tuple[str, ...] = ()


class Span(Protocol):
    """A mention as the NER model (or a hand-labelled set) gives it."""

    start: int
    end: int
    label: str
    text: str


class Contact(Protocol):
    """A person from a page's contact block (``contacts`` table, extraction)."""

    name: str
    role: str | None
    organisation: str | None


# --------------------------------------------------------------------------- gazetteer lookups


class OrganisationIndex:
    """Gazetteer organisations by every name, and the names that start a branch."""

    def __init__(self, gazetteer: Gazetteer):
        self.gazetteer = gazetteer
        self.by_key: dict[str, Organisation] = {}
        for org in gazetteer.organisations:
            for name in org.names:
                self.by_key.setdefault(name_key(name), org)
        self.branching = sorted(
            (
                (name_key(name), org)
                for org in gazetteer.organisations
                if org.branches
                for name in org.names
            ),
            key=lambda item: -len(item[0]),
        )
        self.by_first_letter: dict[str, list[tuple[str, Organisation]]] = {}
        for key, org in self.by_key.items():
            self.by_first_letter.setdefault(key[0], []).append((key, org))

    def exact(self, key: str) -> Organisation | None:
        return self.by_key.get(key)

    def branch_of(self, key: str) -> tuple[Organisation, str] | None:
        """The organisation whose branch this is, and the branch's own part ("södra skåne")."""
        for name, org in self.branching:
            if key.startswith(name + " "):
                rest = key[len(name) + 1 :]
                if 1 <= len(rest.split()) <= 4:
                    return org, rest
        return None

    def fuzzy(self, key: str, threshold: float) -> Organisation | None:
        """The one gazetteer organisation a misspelt name most likely means, if close enough."""
        scored = [
            (token_similarity(key, name), org)
            for name, org in self.by_first_letter.get(key[:1], [])
        ]
        best = max((score for score, _ in scored), default=0.0)
        winners = {org.id: org for score, org in scored if score == best}
        if best >= threshold and len(winners) == 1:
            return next(iter(winners.values()))
        return None


def genitive_candidates(key: str) -> list[str]:
    """The key, then the key without its genitive: "-s", or ":s" after an abbreviation (MKB:s)."""
    if key.endswith(":s") and len(key) > 3:
        return [key, key[:-2]]
    return [key, key[:-1]] if key.endswith("s") and len(key) > 3 else [key]


# --------------------------------------------------------------------------- the linker


class Linker:
    """Links the mentions of one document at a time; holds the gazetteer and place index."""

    def __init__(
        self,
        gazetteer: Gazetteer | None = None,
        places: Places | None = None,
        *,
        fuzzy_threshold: float = FUZZY_THRESHOLD,
    ):
        self.gazetteer = gazetteer or default_gazetteer()
        self.places = places or default_places(self.gazetteer)
        self.organisations = OrganisationIndex(self.gazetteer)
        self.fuzzy_threshold = fuzzy_threshold

    # ------------------------------------------------------------------ one document

    def link(
        self, text: str, spans: Sequence[Span], contacts: Iterable[Contact] = ()
    ) -> list[LinkedMention]:
        """Link every mention of ``text``; the result is parallel to ``spans``."""
        document = _Document(text)
        forms = [clean_form(span.text) or fold(span.text) for span in spans]
        labels = [self._label(span.label, form) for span, form in zip(spans, forms, strict=True)]
        labels = self._harmonise(forms, labels)
        refs: list[EntityRef | None] = [
            self._organisation(form, document) if label == "ORG" else None
            for form, label in zip(forms, labels, strict=True)
        ]
        refs = self._places(forms, labels, refs)
        for i, label in enumerate(labels):
            if refs[i] is None and label == "PER":
                refs[i] = self._person(forms[i], document)
        refs = self._surnames(forms, labels, refs)
        keys = self._abbreviations(text, spans, forms, labels, refs, document)
        mentions = [
            LinkedMention(
                start=span.start,
                end=span.end,
                label=span.label,
                text=span.text,
                entity=ref or self._text_entity(labels[i], forms[i], document),
                form=forms[i],
                sentence=sentence_at(text, span.start, span.end),
                keys=keys.get(i, ()),
            )
            for i, (span, ref) in enumerate(zip(spans, refs, strict=True))
        ]
        mentions = [self._role(text, i, mentions) for i in range(len(mentions))]
        return apply_contacts(mentions, contacts, self)

    # ------------------------------------------------------------------ organisations

    def organisation_entity(self, org: Organisation) -> EntityRef:
        """The entity of a gazetteer organisation, with its parent chain."""
        parent = self.gazetteer.organisation_by_id.get(org.parent) if org.parent else None
        return EntityRef(
            label="ORG",
            key=org.key,
            name=org.name,
            origin="gazetteer",
            parent=self.organisation_entity(parent) if parent else None,
            municipality=org.municipality,
        )

    def _organisation(self, form: str, document: _Document) -> EntityRef | None:
        """A gazetteer organisation, a branch of one, a place mislabelled ORG, or None."""
        key, bare = name_key(form), strip_legal_form(form)
        for variant in dict.fromkeys([key, name_key(bare)]):
            for candidate in genitive_candidates(variant):
                org = self.organisations.exact(candidate)
                if org is not None:
                    return self.organisation_entity(org)
        branch = self._branch(bare, document)
        if branch is not None:
            return branch
        if self.places.knows(key) or self.places.knows(genitive_candidates(key)[-1]):
            return None  # a place; _places() takes it
        org = self.organisations.fuzzy(name_key(bare), self.fuzzy_threshold)
        return self.organisation_entity(org) if org else None

    def _branch(self, form: str, document: _Document) -> EntityRef | None:
        """ "ABF Malmö": a branch of an organisation with branches, named after its place."""
        found = self.organisations.branch_of(name_key(form))
        if found is None:
            return None
        parent, rest = found
        if rest.endswith("s") and (self.places.knows(rest[:-1]) or document.uses(form[:-1])):
            form, rest = form[:-1], rest[:-1]
        own = form[len(form) - len(rest) :]
        name = f"{parent.name} {own}"
        return EntityRef(
            label="ORG",
            key=name_key(name),
            name=name,
            origin="text",
            parent=self.organisation_entity(parent),
        )

    def _label(self, label: str, form: str) -> str:
        """The label the gazetteer and the form of the name support, where the model slipped.

        An organisation the gazetteer knows is ORG whatever the model said ("Boverket" tagged
        LOC, "Röda Korset" tagged PER), unless the name is also a place. A "person" whose name
        reads like an organisation ("Bostadsbolaget Söderhem", "… kommun") is ORG, and one named
        like a district, county or country is LOC. Municipality and village names are not
        used against PER: "Lund", "Berg" and "Mark" are common surnames.
        """
        if label not in ("PER", "LOC"):
            return label
        for candidate in genitive_candidates(name_key(form)):
            if self.places.knows(candidate):
                kinds = self.places.kinds(candidate)
                if label == "LOC" or kinds - {"municipality", "locality"}:
                    return "LOC"
            elif self.organisations.exact(candidate) is not None:
                return "ORG"
        if label == "PER" and ORGANISATION_WORDS.search(name_key(form)):
            return "ORG"
        return label

    def _harmonise(self, forms: list[str], labels: list[str]) -> list[str]:
        """One label per name within a document, where the model labelled a name two ways.

        * A one-word name that is the surname of exactly one person named in full in the text
          is that person ("Lövgren betonar", even when tagged ORG; "Lund" after "Karin Lund"),
          unless the gazetteer knows it as an organisation.
        * A name no list knows takes the label most of its mentions (or of its form without a
          genitive -s) have: "Söderhem" ORG four times makes "Söderhems" ORG too. ORG wins a
          tie over LOC, LOC over PER.
        * A place name tagged PER is a place if the text also uses it as a place or
          organisation, or names its municipality ("i Vännäs" next to "Vännäs kommun").
        """
        votes: dict[str, Counter[str]] = defaultdict(Counter)
        for form, label in zip(forms, labels, strict=True):
            votes[name_key(form)][label] += 1
        people = {
            name_key(form)
            for form, label in zip(forms, labels, strict=True)
            if label == "PER" and len(form.split()) > 1
        }
        surnames = Counter(person.split()[-1] for person in people)
        towns = {
            name_key(org.municipality)
            for form, label in zip(forms, labels, strict=True)
            if label == "ORG"
            for candidate in genitive_candidates(name_key(form))
            if (org := self.organisations.exact(candidate)) and org.municipality
        }
        preference = {"ORG": 2, "LOC": 1, "PER": 0}
        out = list(labels)
        for i, form in enumerate(forms):
            key = name_key(form)
            candidates = genitive_candidates(key)
            counted: Counter[str] = Counter()
            for candidate in candidates:
                counted.update(votes.get(candidate, {}))
            organisation = any(self.organisations.exact(c) for c in candidates)
            if len(form.split()) == 1 and any(surnames[c] == 1 for c in candidates):
                out[i] = labels[i] if organisation else "PER"
            elif self._known(key):
                elsewhere = counted["LOC"] + counted["ORG"]
                place = any(self.places.knows(candidate) for candidate in candidates)
                town = any(candidate in towns for candidate in candidates)
                if labels[i] == "PER" and place and (elsewhere or town):
                    out[i] = "LOC"
            elif counted:
                out[i] = max(counted, key=lambda label: (counted[label], preference.get(label, -1)))
        return out

    def _known(self, key: str) -> bool:
        """Whether a gazetteer organisation or a place has this name (with or without -s)."""
        return any(
            self.places.knows(candidate) or self.organisations.exact(candidate)
            for candidate in genitive_candidates(key)
        )

    # ------------------------------------------------------------------ places

    def _place_name(self, form: str) -> str | None:
        """The known place name a LOC form stands for: as is, without genitive or direction."""
        key = name_key(form)
        if self.places.knows(key):
            return key
        if key.endswith("s") and self.places.knows(key[:-1]):
            return key[:-1]
        bare = DIRECTION.sub("", key)
        return self._place_name(bare) if bare != key else None

    def _places(
        self, forms: list[str], labels: list[str], refs: list[EntityRef | None]
    ) -> list[EntityRef | None]:
        """Geocode LOC mentions (and ORG mentions that are only place names) together."""
        evidence = Evidence()
        for ref in refs:
            if ref is not None and ref.origin == "gazetteer":
                self._org_evidence(ref, evidence)
        wanted: dict[int, str] = {}
        for i, label in enumerate(labels):
            if refs[i] is None and label in ("LOC", "ORG"):
                place = self._place_name(forms[i])
                if place is not None:
                    wanted[i] = place
        resolved = self.places.resolve_all(list(wanted.values()), evidence)
        out = list(refs)
        for i, name in wanted.items():
            place = resolved.get(name)
            out[i] = self._place_entity(place) if place else self._unresolved_place(name, forms[i])
        return out

    def _org_evidence(self, ref: EntityRef, evidence: Evidence) -> None:
        org = self.gazetteer.organisation_by_id.get(ref.key.removeprefix("org:"))
        if org is None:
            return
        if org.municipality:
            for place in self.places.candidates(org.municipality):
                if place.kind == "municipality":
                    evidence.add(place)
        elif org.county:
            evidence.counties.add(org.county)

    @staticmethod
    def _place_entity(place: Place) -> EntityRef:
        return EntityRef(
            label="LOC",
            key=place.key,
            name=place.name,
            origin="place",
            latitude=place.latitude,
            longitude=place.longitude,
            municipality=place.municipality,
        )

    def _unresolved_place(self, name: str, form: str) -> EntityRef:
        """A known but ambiguous name: kept as a place of its own, without coordinates."""
        shown = form if name_key(form) == name else self.places.candidates(name)[0].name
        return EntityRef(label="LOC", key=name, name=shown, origin="text")

    # ------------------------------------------------------------------ people

    def _person(self, form: str, document: _Document) -> EntityRef:
        """A person, named as written; a genitive -s is dropped only with evidence."""
        if form.endswith("s") and len(form.split()) > 1:
            base = form[:-1]
            if document.uses(base) or SURNAME_GENITIVE.search(form.casefold()):
                form = base
        return EntityRef(label="PER", key=name_key(form), name=form, origin="text")

    def _surnames(
        self, forms: list[str], labels: list[str], refs: list[EntityRef | None]
    ) -> list[EntityRef | None]:
        """A one-word name is the person with that surname named in full, if only one is."""
        by_surname: dict[str, set[str]] = {}
        full: dict[str, EntityRef] = {}
        for ref in refs:
            if ref is not None and ref.label == "PER" and len(ref.name.split()) > 1:
                by_surname.setdefault(ref.name.split()[-1].casefold(), set()).add(ref.key)
                full[ref.key] = ref
        out = list(refs)
        for i, label in enumerate(labels):
            ref = refs[i]
            if label != "PER" or ref is None or len(forms[i].split()) != 1:
                continue
            for candidate in genitive_candidates(forms[i].casefold()):
                people = by_surname.get(candidate, set())
                if len(people) == 1:
                    out[i] = full[next(iter(people))]
                    break
        return out

    # ------------------------------------------------------------------ text-only entities

    def _text_entity(self, label: str, form: str, document: _Document) -> EntityRef:
        """An entity known only from the texts; a genitive -s is dropped with evidence."""
        if form.endswith("s") and len(form) > 3 and label != "PER":
            definite = label == "ORG" and DEFINITE_GENITIVE.search(form.casefold())
            if definite or document.uses(form[:-1]):
                form = form[:-1]
        return EntityRef(label=label, key=text_key(label, form), name=form, origin="text")

    def organisation_ref(self, name: str) -> EntityRef | None:
        """The gazetteer organisation (or branch) a name outside any text refers to, if any."""
        return self._organisation(clean_form(name), _Document(""))

    # ------------------------------------------------------------------ abbreviations

    def _abbreviations(
        self,
        text: str,
        spans: Sequence[Span],
        forms: list[str],
        labels: list[str],
        refs: list[EntityRef | None],
        document: _Document,
    ) -> dict[int, tuple[str, ...]]:
        """Link short forms the text defines to the long ones, in place; return keys to learn."""
        defined: dict[str, int] = {}
        for i, span in enumerate(spans):
            if labels[i] != "ORG":
                continue
            for short in defined_abbreviations(text, span.start, span.end, forms[i]):
                defined.setdefault(short.casefold(), i)
        learnt: dict[int, tuple[str, ...]] = {}
        if not defined:
            return learnt
        for i, label in enumerate(labels):
            short = forms[i].casefold()
            if label == "ORG" and short in defined and defined[short] != i:
                long = defined[short]
                refs[i] = refs[long] or self._text_entity("ORG", forms[long], document)
        for short, long in defined.items():
            learnt[long] = (*learnt.get(long, ()), short)
        return learnt

    # ------------------------------------------------------------------ roles

    def _role(self, text: str, index: int, mentions: list[LinkedMention]) -> LinkedMention:
        mention = mentions[index]
        if mention.entity.label != "PER":
            return mention
        role, affiliation = role_after(text, index, mentions)
        if role is None and affiliation is None:
            role = role_before(text, mention.start)
        return replace(mention, role=role, affiliation=affiliation)


@lru_cache(maxsize=1)
def default_linker() -> Linker:
    """One linker per process: building the place index reads GeoNames, which takes seconds."""
    return Linker()


class _Document:
    """The text being linked, for "is this form used elsewhere in it" questions."""

    def __init__(self, text: str):
        self.text = text

    def uses(self, form: str) -> bool:
        """Whether ``form`` occurs in the text as a whole word sequence (case-insensitive)."""
        if len(form) < 2:
            return False
        pattern = r"(?<!\w)" + re.escape(form) + r"(?!\w)"
        return re.search(pattern, self.text, flags=re.IGNORECASE) is not None


# --------------------------------------------------------------------------- helper functions


def is_abbreviation(short: str, long: str) -> bool:
    """Whether ``short`` can abbreviate ``long``: same first letter, its letters in order.

    "Delmos" fits "Delegationen mot segregation", "MUCF" fits "Myndigheten för ungdoms- och
    civilsamhällesfrågor"; "Malmö" does not fit "Malmö mot Diskriminering" because it is not
    shorter than half of it.
    """
    s, lng = short.casefold(), long.casefold()
    if len(s) < 2 or len(s) * 2 > len(lng) or s[0] != lng[0]:
        return False
    position = 0
    for letter in s:
        position = lng.find(letter, position)
        if position < 0:
            return False
        position += 1
    return True


def defined_abbreviations(text: str, start: int, end: int, form: str) -> list[str]:
    """Abbreviations defined right next to a long name.

    Four patterns: "Long (ABBR)", "Long, ABBR,", "ABBR (Long)" and "ABBR, Long". Comma patterns
    require at least two capitals, so "Anna Wiking, Fastighetsägarna Syd" is not read as one.
    """
    found = []
    after = re.match(r"\s*\(\s*(" + ABBREVIATION.pattern + r")\s*\)", text[end : end + 20])
    if after:
        found.append(after.group(1))
    comma = re.match(r",\s*([A-ZÅÄÖ]{2,}[A-Za-zÅÄÖåäö]*)\s*[,.)]", text[end : end + 20])
    if comma:
        found.append(comma.group(1))
    before = re.search(
        r"(" + ABBREVIATION.pattern + r")\s*\(\s*$", text[max(0, start - 20) : start]
    )
    if before:
        found.append(before.group(1))
    lead = re.search(r"([A-ZÅÄÖ]{2,}[A-Za-zÅÄÖåäö]*)\s*,\s*$", text[max(0, start - 20) : start])
    if lead:
        found.append(lead.group(1))
    return [short for short in found if is_abbreviation(short, form)]


def sentence_at(text: str, start: int, end: int) -> str:
    """The sentence around a mention, at most ``MAX_SENTENCE`` characters."""
    before = [m.end() for m in SENTENCE_END.finditer(text, 0, start)]
    left = before[-1] if before else 0
    after = SENTENCE_END.search(text, end)
    right = after.end() if after else len(text)
    left = max(left, start - MAX_SENTENCE // 2)
    right = min(right, end + MAX_SENTENCE // 2)
    return fold(text[left:right])


ROLE_PREPOSITIONS = re.compile(r"\s+(?:på|vid|i|för|hos|inom|från|med)$")
NOT_A_ROLE = re.compile(
    r"^(?:som|och|men|att|är|var|har|hade|blir|säger|sa|berättar|menar|tycker|både|"
    r"vilket|det|den|de|vi|jag|hon|han|hen|när|där|eller|samt|med|i|på)\b"
)
SPEECH_VERB = re.compile(
    r"(?:säger|sa|sade|enligt|berättar|menar|tycker|förklarar|konstaterar|skriver|svarar)"
    r"\s+((?:[a-zåäöé][\w-]*\s+){1,4})$"
)
MAX_ROLE = 90


def role_after(
    text: str, index: int, mentions: Sequence[LinkedMention]
) -> tuple[str | None, int | None]:
    """Role and affiliation written after a name: ", nationell specialist, Hyresgästföreningen".

    The clause runs from the comma after the name (or its party, "(S)") to the end of the
    sentence. An organisation mention inside it is the affiliation; the words before it, without
    a joining "på"/"vid"/"i", are the role. Without one, the words up to the next comma are the
    role if they look like one (lower case, not a verb or conjunction).
    """
    mention = mentions[index]
    opening = re.match(r"\s*(\([A-ZÅÄÖ]{1,4}\))?\s*,\s*", text[mention.end : mention.end + 40])
    if not opening:
        return None, None
    clause_start = mention.end + opening.end()
    boundary = SENTENCE_END.search(text, clause_start)
    clause_end = boundary.start() if boundary else len(text)
    clause_end = min(clause_end, clause_start + 160)
    others = [
        (i, m)
        for i, m in enumerate(mentions)
        if i != index and clause_start <= m.start < clause_end
    ]
    person = next((m.start for _, m in others if m.entity.label == "PER"), clause_end)
    organisation = next(
        ((i, m) for i, m in others if m.entity.label == "ORG" and m.start < person), None
    )
    if organisation is not None:
        prefix = text[clause_start : organisation[1].start].strip()
        prefix = ROLE_PREPOSITIONS.sub("", prefix.rstrip(",").strip())
        return _role_text(prefix), organisation[0]
    words = text[clause_start:person].split(",")[0].strip()
    return _role_text(ROLE_PREPOSITIONS.sub("", words)), None


def role_before(text: str, start: int) -> str | None:
    """A title between a speech verb and the name: "säger projektledaren Karin Holm"."""
    found = SPEECH_VERB.search(text[max(0, start - 80) : start])
    return _role_text(found.group(1).strip()) if found else None


def _role_text(words: str) -> str | None:
    words = fold(words).strip(" ,;:–-")
    if not words or len(words) > MAX_ROLE or not words[0].islower() or NOT_A_ROLE.match(words):
        return None
    if "@" in words or "://" in words or re.search(r"\d{3}", words):
        return None  # an e-mail address, a link or a phone number, not a title
    return words


def apply_contacts(
    mentions: list[LinkedMention], contacts: Iterable[Contact], linker: Linker
) -> list[LinkedMention]:
    """Fill in roles from the page's contact block for people named there.

    The contact's organisation becomes the affiliation when the document mentions that
    organisation; otherwise it is kept in the role text ("enhetschef, socialkontoret").
    """
    contacts = list(contacts)
    if not contacts:
        return mentions
    org_index = {}
    for i, mention in enumerate(mentions):
        if mention.entity.label == "ORG":
            org_index.setdefault(mention.entity.key, i)
            org_index.setdefault(name_key(mention.form), i)
    out = list(mentions)
    for contact in contacts:
        key = name_key(contact.name)
        affiliation = None
        organisation = (contact.organisation or "").strip()
        if organisation:
            ref = linker.organisation_ref(organisation)
            affiliation = org_index.get(ref.key) if ref else org_index.get(name_key(organisation))
        role = (contact.role or "").strip() or None
        if role and organisation and affiliation is None:
            role = f"{role}, {organisation}"
        elif not role and organisation and affiliation is None:
            role = organisation
        for i, mention in enumerate(out):
            unset = mention.role is None and mention.affiliation is None
            if mention.entity.label == "PER" and mention.entity.key == key and unset:
                out[i] = replace(mention, role=role, affiliation=affiliation)
    return out
