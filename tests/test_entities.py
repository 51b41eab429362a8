"""From mentions to entities: canonical names, people's roles, places on the map, and links.

Linking is specified on short Swedish press-release passages with the spans the NER model would
give; the store is checked on real SQLite files; the hand-made mention set is scored as in
``make bench``; and the end result is checked over HTTP in ``pipeline serve``.
"""

from __future__ import annotations

import html
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from pipeline.batch import Batch
from pipeline.config import SAMPLE_SOURCES, load_sources
from pipeline.graph import export_graph
from pipeline.nlp.entities import (
    EntityStore,
    GoldMention,
    evaluate_linking,
    pair_scores,
    read_gold,
    stable_id,
)
from pipeline.nlp.gazetteer import GazetteerError, load_gazetteer
from pipeline.nlp.linking import (
    EntityRef,
    LinkedMention,
    Linker,
    default_linker,
    token_similarity,
)
from pipeline.nlp.places import distance_km
from pipeline.progress import Progress
from pipeline.sample import SampleServer
from pipeline.store.db import (
    open_db,
    pending_annotation,
    refresh_entity_counts,
    save_annotations,
    save_document,
    sync_sources,
    transaction,
)

FIXTURES = Path(__file__).parent / "fixtures" / "entities"
GAZETTEER = Path(__file__).parents[1] / "corpus" / "gazetteer"
PIPELINE = [sys.executable, "-m", "pipeline"]


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str
    text: str


def spans(text: str, *names: tuple[str, str]) -> list[Span]:
    """The spans of ``(surface, label)`` pairs, each found after the previous one."""
    found, position = [], 0
    for surface, label in names:
        start = text.index(surface, position)
        found.append(Span(start, start + len(surface), label, surface))
        position = start + len(surface)
    return found


@pytest.fixture(scope="module")
def linker() -> Linker:
    return default_linker()


def link(linker: Linker, text: str, *names: tuple[str, str]) -> list[LinkedMention]:
    return linker.link(text, spans(text, *names))


# --------------------------------------------------------------------------- organisations


def test_inflected_and_abbreviated_forms_of_an_organisation_are_one_entity(linker):
    text = (
        "Hyresgästföreningen har kartlagt engagemanget. Enligt Hyresgästföreningens rapport "
        "vill många delta. SABO, som i dag heter Sveriges Allmännytta, och Sveriges "
        "Allmännyttas medlemmar stöder arbetet, liksom Studieförbundet ABF och ABF."
    )
    found = link(
        linker,
        text,
        ("Hyresgästföreningen", "ORG"),
        ("Hyresgästföreningens", "ORG"),
        ("SABO", "ORG"),
        ("Sveriges Allmännytta", "ORG"),
        ("Sveriges Allmännyttas", "ORG"),
        ("Studieförbundet ABF", "ORG"),
        ("ABF", "ORG"),
    )
    names = [m.entity.name for m in found]
    assert names == ["Hyresgästföreningen"] * 2 + ["Sveriges Allmännytta"] * 3 + ["ABF"] * 2
    assert len({m.entity.key for m in found}) == 3


def test_legal_forms_and_i_sverige_do_not_make_another_organisation(linker):
    text = (
        "MKB Fastighets AB och Heimstaden AB (publ) har avtal med Röda Korset i Sverige. "
        "MKB:s vd och Heimstaden välkomnar att Röda Korset deltar."
    )
    found = link(
        linker,
        text,
        ("MKB Fastighets AB", "ORG"),
        ("Heimstaden AB (publ)", "ORG"),
        ("Röda Korset i Sverige", "ORG"),
        ("MKB:s", "ORG"),
        ("Heimstaden", "ORG"),
        ("Röda Korset", "ORG"),
    )
    keys = [m.entity.key for m in found]
    assert keys[0] == keys[3] and keys[1] == keys[4] and keys[2] == keys[5]
    assert len(set(keys)) == 3


def test_a_branch_is_its_own_organisation_with_its_parent(linker):
    text = (
        "Hyresgästföreningen södra Skåne och ABF Malmö bjuder in. Hyresgästföreningen "
        "region Norr och Fastighetsägarna Öst deltar."
    )
    found = link(
        linker,
        text,
        ("Hyresgästföreningen södra Skåne", "ORG"),
        ("ABF Malmö", "ORG"),
        ("Hyresgästföreningen region Norr", "ORG"),
        ("Fastighetsägarna Öst", "ORG"),
    )
    parents = [m.entity.parent.name if m.entity.parent else None for m in found]
    assert parents == ["Hyresgästföreningen", "ABF", "Hyresgästföreningen", "Fastighetsägarna"]
    assert [m.entity.name for m in found][:2] == ["Hyresgästföreningen södra Skåne", "ABF Malmö"]
    assert len({m.entity.key for m in found} | {m.entity.parent.key for m in found}) == 7


def test_an_abbreviation_the_text_defines_names_the_same_organisation(linker):
    text = (
        "Nätverket för hållbara bostadsområden (NHB) startar i höst. Bakom står Sveriges "
        "Kommuner och Regioner, SKR. NHB och SKR bjuder in."
    )
    found = link(
        linker,
        text,
        ("Nätverket för hållbara bostadsområden", "ORG"),
        ("NHB", "ORG"),
        ("Sveriges Kommuner och Regioner", "ORG"),
        ("SKR", "ORG"),
        ("NHB", "ORG"),
        ("SKR", "ORG"),
    )
    keys = [m.entity.key for m in found]
    assert keys[0] == keys[1] == keys[4] and keys[2] == keys[3] == keys[5]
    assert found[0].keys == ("nhb",), "the abbreviation is passed on to be learnt"


def test_a_municipality_as_organisation_keeps_an_s_that_belongs_to_its_name(linker):
    text = (
        "Kristianstads kommun, Borås Stad och Vännäs kommun samarbetar. I Borås och Vännäs "
        "finns nya mötesplatser; Malmös och Kristianstads erfarenheter sprids."
    )
    found = link(
        linker,
        text,
        ("Kristianstads kommun", "ORG"),
        ("Borås Stad", "ORG"),
        ("Vännäs kommun", "ORG"),
        ("Borås", "LOC"),
        ("Vännäs", "LOC"),
        ("Malmös", "LOC"),
        ("Kristianstads", "LOC"),
    )
    assert [m.entity.name for m in found] == [
        "Kristianstads kommun",
        "Borås Stad",
        "Vännäs kommun",
        "Borås",
        "Vännäs",
        "Malmö",
        "Kristianstad",
    ]


def test_a_misspelt_organisation_is_matched_but_a_different_one_is_not(linker):
    text = "Hyresgästförenigen, Arbetsförmedlnigen och Uppsalahus deltar."
    found = link(
        linker,
        text,
        ("Hyresgästförenigen", "ORG"),
        ("Arbetsförmedlnigen", "ORG"),
        ("Uppsalahus", "ORG"),
    )
    assert [m.entity.name for m in found] == [
        "Hyresgästföreningen",
        "Arbetsförmedlingen",
        "Uppsalahus",
    ]
    assert found[2].entity.origin == "text", "Uppsalahus is not Uppsalahem"


def test_token_similarity_accepts_typos_and_keeps_different_names_apart():
    assert token_similarity("melinda sjunneson", "melinda sjunnesson") >= 90
    assert token_similarity("anna larsson", "anna karlsson") == 0, "first letters differ"
    assert token_similarity("fastighetsägarna syd", "fastighetsägarna öst") == 0, "short token"
    assert token_similarity("maria lindkvist", "maria lindqvist") < 90
    assert token_similarity("per holm", "per holmberg") == 0


def test_the_model_s_label_is_corrected_where_the_gazetteer_knows_better(linker):
    text = "Röda Korset, Boverket och Rosengård nämns, liksom Lund som gav intervjun."
    found = link(
        linker,
        text,
        ("Röda Korset", "PER"),
        ("Boverket", "LOC"),
        ("Rosengård", "ORG"),
        ("Lund", "PER"),
    )
    assert [m.entity.label for m in found] == ["ORG", "ORG", "LOC", "PER"]
    assert [m.label for m in found] == ["PER", "LOC", "ORG", "PER"], "the model's label is kept"


def test_a_name_the_model_labels_two_ways_in_one_text_gets_one_label(linker):
    text = "Söderhem bygger nytt. Söderhems vd och Söderhem i Lindängen välkomnar beslutet."
    found = link(linker, text, ("Söderhem", "ORG"), ("Söderhems", "PER"), ("Söderhem", "ORG"))
    assert {m.entity.label for m in found} == {"ORG"}
    assert len({m.entity.key for m in found}) == 1


def test_a_surname_or_a_town_the_model_mislabels_follows_the_rest_of_the_text(linker):
    text = (
        "– Det behövs stöd, säger Sophia Lövgren. Lövgren betonar samarbetet. Vännäs kommun "
        "satsar, och i Vännäs har föreningarna tagit ansvar."
    )
    found = link(
        linker,
        text,
        ("Sophia Lövgren", "PER"),
        ("Lövgren", "ORG"),
        ("Vännäs kommun", "ORG"),
        ("Vännäs", "PER"),
    )
    assert found[1].entity == found[0].entity
    assert (found[3].entity.label, found[3].entity.municipality) == ("LOC", "Vännäs")


# --------------------------------------------------------------------------- people


def test_a_surname_alone_is_the_person_named_in_full_earlier(linker):
    text = (
        "Anna Wiking, Fastighetsägarna Syd, leder dagen. – Vi vill visa vägen, säger Wiking. "
        "Wikings kollegor följer arbetet."
    )
    found = link(
        linker,
        text,
        ("Anna Wiking", "PER"),
        ("Fastighetsägarna Syd", "ORG"),
        ("Wiking", "PER"),
        ("Wikings", "PER"),
    )
    assert found[0].entity == found[2].entity == found[3].entity
    assert found[3].entity.name == "Anna Wiking"


def test_a_surname_shared_by_two_people_stays_unresolved(linker):
    text = "Eva Andersson och Peter Andersson talade. Andersson avslutade."
    found = link(
        linker, text, ("Eva Andersson", "PER"), ("Peter Andersson", "PER"), ("Andersson", "PER")
    )
    assert found[2].entity.name == "Andersson"


def test_roles_and_affiliations_come_from_the_words_around_the_name(linker):
    text = (
        "– Vi saknar stöd, säger Sophia Lövgren, nationell specialist, Hyresgästföreningen. "
        "– Det tar tid, säger Sofia Ahlgren, strateg för mänskliga rättigheter i Norrköpings "
        "kommun. – Vi ser resultat, säger projektledaren Karin Holm. "
        "– Det är glädjande, säger Petra Sjögren."
    )
    found = link(
        linker,
        text,
        ("Sophia Lövgren", "PER"),
        ("Hyresgästföreningen", "ORG"),
        ("Sofia Ahlgren", "PER"),
        ("Norrköpings kommun", "ORG"),
        ("Karin Holm", "PER"),
        ("Petra Sjögren", "PER"),
    )
    people = {m.entity.name: m for m in found if m.entity.label == "PER"}
    assert people["Sophia Lövgren"].role == "nationell specialist"
    assert found[people["Sophia Lövgren"].affiliation].entity.name == "Hyresgästföreningen"
    assert people["Sofia Ahlgren"].role == "strateg för mänskliga rättigheter"
    assert found[people["Sofia Ahlgren"].affiliation].entity.name == "Norrköpings kommun"
    assert people["Karin Holm"].role == "projektledaren"
    assert people["Petra Sjögren"].role is None


def test_the_contact_block_gives_a_role_the_text_does_not(linker):
    text = "Socialtjänsten och Region Skåne samarbetar. Jonas Ek har lett arbetet."
    contacts = [SimpleNamespace(name="Jonas Ek", role="enhetschef", organisation="Region Skåne")]
    found = linker.link(text, spans(text, ("Region Skåne", "ORG"), ("Jonas Ek", "PER")), contacts)
    assert found[1].role == "enhetschef"
    assert found[found[1].affiliation].entity.name == "Region Skåne"


# --------------------------------------------------------------------------- places


def test_a_district_gets_its_coordinates_and_municipality(linker):
    text = "Mötet hölls i Rosengård och på Seved."
    rosengard, seved = link(linker, text, ("Rosengård", "LOC"), ("Seved", "LOC"))
    assert rosengard.entity.municipality == seved.entity.municipality == "Malmö"
    assert distance_km(rosengard.entity.latitude, rosengard.entity.longitude, 55.586, 13.042) < 2


def test_an_ambiguous_place_is_resolved_only_by_the_same_document(linker):
    in_vasteras = "Mimer renoverar i Råby i Västerås."
    near_balsta = "Projektet i Råby utanför Bålsta i Håbo kommun."
    about_uppsala = "Uppsalahem har erfarenheter från Uppsala och Råby."
    vasteras = link(linker, in_vasteras, ("Råby", "LOC"), ("Västerås", "LOC"))[0].entity
    balsta = link(linker, near_balsta, ("Råby", "LOC"), ("Bålsta", "LOC"))[0].entity
    uppsala = link(linker, about_uppsala, ("Uppsala", "LOC"), ("Råby", "LOC"))[1].entity
    assert vasteras.municipality == "Västerås"
    assert distance_km(balsta.latitude, balsta.longitude, 59.533, 17.5) < 3
    assert (uppsala.latitude, uppsala.longitude) == (None, None), "no evidence, no guess"


def test_places_outside_the_lists_and_countries_have_no_coordinates(linker):
    text = "En delegation från Köpenhamn besökte Sverige och Skåne."
    found = link(linker, text, ("Köpenhamn", "LOC"), ("Sverige", "LOC"), ("Skåne", "LOC"))
    assert all(m.entity.latitude is None and m.entity.longitude is None for m in found)
    assert [m.entity.name for m in found] == ["Köpenhamn", "Sverige", "Skåne"]


# --------------------------------------------------------------------------- the gazetteer


def test_the_gazetteer_has_every_municipality_county_and_the_districts_users_name():
    gazetteer = load_gazetteer(GAZETTEER)
    assert len(gazetteer.municipalities) == 290
    assert len(gazetteer.counties) == 21
    towns = {
        m.organisation
        for m in gazetteer.municipalities
        if m.organisation.endswith(("stad", "Stad"))
    }
    assert len(towns) == 14 and {"Malmö stad", "Göteborgs Stad", "Stockholms stad"} <= towns
    by_name = {o.name: o for o in gazetteer.organisations}
    assert "Malmö kommun" in by_name["Malmö stad"].aliases
    assert "Stockholms kommun" in by_name["Stockholms stad"].aliases
    regions = {o.name for o in gazetteer.organisations if o.kind == "region"}
    assert len(regions) == 21 and "Region Skåne" in regions
    districts = {d.name for d in gazetteer.districts}
    wanted = {"Rosengård", "Seved", "Husby", "Rinkeby", "Tensta", "Hammarkullen", "Navestad"}
    assert wanted | {"Vivalla", "Gottsunda", "Araby", "Ronna", "Fittja", "Råby"} <= districts


def test_every_district_lies_near_its_municipality(linker):
    """Swapped or mistyped coordinates would put a district far from its town."""
    for district in load_gazetteer(GAZETTEER).districts:
        town = next(
            p for p in linker.places.candidates(district.municipality) if p.kind == "municipality"
        )
        apart = distance_km(district.latitude, district.longitude, town.latitude, town.longitude)
        assert apart < 20, f"{district.name} is {apart:.0f} km from {district.municipality}"


def test_a_mistake_in_a_gazetteer_file_names_the_file_and_line(tmp_path):
    for name in ("counties.tsv", "municipalities.tsv", "organisations.yaml", "areas.yaml"):
        (tmp_path / name).write_bytes((GAZETTEER / name).read_bytes())
    lines = (GAZETTEER / "districts.tsv").read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, start=1) if line.startswith("Rosengård\t"))
    lines[number - 1] = lines[number - 1].replace("55.5858", "5.5858")
    (tmp_path / "districts.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match=rf"districts\.tsv:{number}: 5\.5858 is outside"):
        load_gazetteer(tmp_path)


def test_the_gazetteer_feeds_a_spacy_entity_ruler():
    import spacy

    nlp = spacy.blank("sv")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(load_gazetteer(GAZETTEER).ruler_patterns())
    doc = nlp("Hyresgästföreningens rapport om Rosengård och Länsstyrelsen Skåne.")
    assert [(e.text, e.label_, e.ent_id_) for e in doc.ents] == [
        ("Hyresgästföreningens", "ORG", "org:hyresgastforeningen"),
        ("Rosengård", "LOC", "district:malmö-rosengård"),
        ("Länsstyrelsen Skåne", "ORG", "org:lansstyrelsen-skane"),
    ]


# --------------------------------------------------------------------------- the store


@dataclass
class Page:
    """What the store reads from an extraction result."""

    text: str
    published: str
    title: str = "Pressmeddelande"
    date_precision: str = "day"
    date_kind: str = "published"
    author: str | None = None
    language: str = "sv"
    kind: str | None = None
    contacts: list = field(default_factory=list)


ONE = (
    "Hyresgästföreningen och Bostadsbolaget Söderhem öppnar en mötesplats i Holma. "
    "– Vi vill nå fler, säger Sara Mahmoud, chef för social hållbarhet, Söderhem."
)
TWO = (
    "Söderhems hyresgäster i Lindängen får stöd av Hyresgästföreningens lokala förening. "
    "Sara Mahmoud och Söderhemm berättar mer."
)
THREE = "Malmö mot Diskriminering granskar uthyrningen hos Söderhem i Malmö."

ONE_SPANS = (
    ("Hyresgästföreningen", "ORG"),
    ("Bostadsbolaget Söderhem", "ORG"),
    ("Holma", "LOC"),
    ("Sara Mahmoud", "PER"),
    ("Söderhem", "ORG"),
)
TWO_SPANS = (
    ("Söderhems", "ORG"),
    ("Lindängen", "LOC"),
    ("Hyresgästföreningens", "ORG"),
    ("Sara Mahmoud", "PER"),
    ("Söderhemm", "ORG"),
)
THREE_SPANS = (("Malmö mot Diskriminering", "ORG"), ("Söderhem", "ORG"), ("Malmö", "LOC"))


def store(tmp_path: Path, name: str, documents: list[tuple[str, str, tuple]]):
    """A database with the given (text, date, spans) documents annotated in this order."""
    db = open_db(tmp_path / name)
    source = SimpleNamespace(
        id="pressrum", name="Pressrum", kind="press_release", hosts=("x",), recrawl_seconds=60
    )
    sync_sources(db, [source])
    for number, (text, published, _) in enumerate(documents):
        url = f"http://pressrum.example/{name}/{number}"
        db["pages"].insert(
            {"url": url, "source_id": "pressrum", "role": "document", "fetch_url": url,
             "first_seen": "2026-11-22T06:00:00Z"}
        )  # fmt: skip
        save_document(
            db,
            url=url,
            source_id="pressrum",
            kind="press_release",
            extracted=Page(text, published),
            fetch_id=None,
        )
    by_text = {text: names for text, _, names in documents}
    for document in pending_annotation(db, "ner-1", "themes-1"):
        found = spans(document.text, *by_text[document.text])
        save_annotations(db, document, found, [], ner_model="ner-1", themes_model="themes-1")
    refresh_entity_counts(db)
    return db


def entity_ids(db) -> dict[tuple[str, str], int]:
    return {(r["label"], r["name"]): r["id"] for r in db.query("SELECT * FROM entities")}


def test_each_mention_is_stored_under_its_canonical_entity_with_sentence_and_role(tmp_path):
    db = store(tmp_path, "a.db", [(ONE, "2023-05-26", ONE_SPANS), (TWO, "2023-06-01", TWO_SPANS)])
    rows = list(
        db.query(
            "SELECT m.text, e.name, m.sentence, m.role, a.name AS affiliation FROM mentions m"
            " JOIN entities e ON e.id = m.entity_id LEFT JOIN entities a ON a.id = m.affiliation_id"
        )
    )
    names = {row["text"]: row["name"] for row in rows}
    assert names["Söderhems"] == names["Söderhemm"] == names["Söderhem"]
    assert names["Hyresgästföreningens"] == "Hyresgästföreningen"
    sara = next(row for row in rows if row["text"] == "Sara Mahmoud" and row["role"])
    assert (sara["role"], sara["affiliation"]) == ("chef för social hållbarhet", names["Söderhem"])
    assert sara["sentence"].startswith("– Vi vill nå fler")
    holma = db["entities"].get(entity_ids(db)[("LOC", "Holma")])
    assert holma["municipality"] == "Malmö" and holma["latitude"] is not None
    roles = list(db.query("SELECT person, role, affiliation, documents FROM person_roles"))
    assert roles == [
        {
            "person": "Sara Mahmoud",
            "role": "chef för social hållbarhet",
            "affiliation": names["Söderhem"],
            "documents": 1,
        }
    ]


def test_entity_ids_do_not_depend_on_the_order_documents_arrive_in(tmp_path):
    documents = [(ONE, "2023-05-26", ONE_SPANS), (THREE, "2023-07-01", THREE_SPANS)]
    forward = entity_ids(store(tmp_path, "forward.db", documents))
    backward = entity_ids(store(tmp_path, "backward.db", documents[::-1]))
    assert forward == backward
    assert forward[("ORG", "Hyresgästföreningen")] == stable_id("ORG", "org:hyresgastforeningen")


def test_annotating_again_keeps_every_id_and_a_merged_spelling(tmp_path):
    db = store(tmp_path, "a.db", [(ONE, "2023-05-26", ONE_SPANS), (TWO, "2023-06-01", TWO_SPANS)])
    before = entity_ids(db)
    learnt = db.execute("SELECT key, origin FROM entity_keys WHERE key = 'söderhemm'").fetchall()
    assert learnt == [("söderhemm", "fuzzy")]
    for document in pending_annotation(db, "ner-2", "themes-1"):
        names = ONE_SPANS if document.text == ONE else TWO_SPANS
        save_annotations(
            db, document, spans(document.text, *names), [], ner_model="ner-2", themes_model="t"
        )
    refresh_entity_counts(db)
    assert entity_ids(db) == before


def test_aliases_list_the_gazetteer_s_names_and_the_texts_spellings_but_not_genitives(tmp_path):
    db = store(tmp_path, "a.db", [(ONE, "2023-05-26", ONE_SPANS), (TWO, "2023-06-01", TWO_SPANS)])
    ids = entity_ids(db)
    union = json.loads(db["entities"].get(ids[("ORG", "Hyresgästföreningen")])["aliases"])
    assert "Hyresgästföreningen Riksförbundet" in union
    assert "Hyresgästföreningens" not in union
    company = db["entities"].get(ids[("ORG", "Bostadsbolaget Söderhem")])
    assert json.loads(company["aliases"]) == ["Söderhem", "Söderhemm"]


def test_entity_links_count_shared_documents_with_first_and_last_date(tmp_path):
    db = store(
        tmp_path,
        "a.db",
        [
            (ONE, "2023-05-26", ONE_SPANS),
            (TWO, "2023-06-01", TWO_SPANS),
            (THREE, "2023-07-01", THREE_SPANS),
        ],
    )
    ids = entity_ids(db)
    company, union = ids[("ORG", "Bostadsbolaget Söderhem")], ids[("ORG", "Hyresgästföreningen")]
    a, b = sorted((company, union))
    link_row = db["entity_links"].get((a, b))
    assert (link_row["documents"], link_row["first_seen"], link_row["last_seen"]) == (
        2,
        "2023-05-26",
        "2023-06-01",
    )
    together = {
        row["other"]
        for row in db.query(
            "SELECT b.name AS other FROM entity_cooccurrence c JOIN entities b"
            " ON b.id = CASE WHEN c.entity_a = ? THEN c.entity_b ELSE c.entity_a END"
            " WHERE ? IN (c.entity_a, c.entity_b)",
            [company, company],
        )
    }
    assert {"Hyresgästföreningen", "Malmö mot Diskriminering", "Sara Mahmoud"} <= together


def test_a_document_annotated_again_updates_only_what_it_changed(tmp_path):
    documents = [
        (ONE, "2023-05-26", ONE_SPANS),
        (TWO, "2023-06-01", TWO_SPANS),
        (THREE, "2023-07-01", THREE_SPANS),
    ]
    db = store(tmp_path, "a.db", documents)
    ids = entity_ids(db)
    watchdog = ids[("ORG", "Malmö mot Diskriminering")]
    company = ids[("ORG", "Bostadsbolaget Söderhem")]
    assert db["entity_links"].count_where("? IN (entity_a, entity_b)", [watchdog]) == 2
    [third] = [d for d in pending_annotation(db, "ner-2", "themes-1") if d.text == THREE]
    found = spans(THREE, ("Söderhem", "ORG"), ("Malmö", "LOC"))
    save_annotations(db, third, found, [], ner_model="ner-2", themes_model="themes-1")
    assert db["entities_to_refresh"].count > 0
    refresh_entity_counts(db)
    assert db["entities_to_refresh"].count == 0
    assert db["entities"].get(watchdog)["document_count"] == 0, "kept, with no mentions left"
    assert db["entity_links"].count_where("? IN (entity_a, entity_b)", [watchdog]) == 0
    assert db["entities"].get(company)["document_count"] == 3
    before = list(db.query("SELECT * FROM entity_links ORDER BY entity_a, entity_b"))
    refresh_entity_counts(db, everything=True)
    assert list(db.query("SELECT * FROM entity_links ORDER BY entity_a, entity_b")) == before


def test_relink_brings_stored_mentions_up_to_date_without_the_model(tmp_path):
    db = store(tmp_path, "a.db", [(ONE, "2023-05-26", ONE_SPANS), (TWO, "2023-06-01", TWO_SPANS)])
    two = next(db.query("SELECT id FROM documents WHERE text = ?", [TWO]))["id"]
    stale = EntityRef(label="ORG", key="hyresgästföreningens", name="Hyresgästföreningens",
                      origin="text")  # fmt: skip
    mentions = default_linker().link(TWO, spans(TWO, *TWO_SPANS))
    assert mentions[2].text == "Hyresgästföreningens"
    mentions[2] = replace(mentions[2], entity=stale)
    with transaction(db) as conn:  # as an older linker without genitive rules stored it
        EntityStore(conn).replace_mentions(two, mentions)
    refresh_entity_counts(db)
    assert ("ORG", "Hyresgästföreningens") in entity_ids(db)
    db.close()
    result = subprocess.run(
        [*PIPELINE, "relink", "--db", str(tmp_path / "a.db")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "2 documents relinked" in result.stdout
    db = open_db(tmp_path / "a.db")
    ids = entity_ids(db)
    assert db["entities"].get(ids[("ORG", "Hyresgästföreningens")])["document_count"] == 0
    union = db["entities"].get(ids[("ORG", "Hyresgästföreningen")])
    assert union["document_count"] == 2, "the genitive mention is back with its organisation"


def test_the_graph_export_opens_as_gexf_and_graphml(tmp_path):
    documents = [(ONE, "2023-05-26", ONE_SPANS), (THREE, "2023-07-01", THREE_SPANS)]
    db = store(tmp_path, "a.db", documents)
    expected_links = db["entity_links"].count
    db.close()
    with (tmp_path / "g.gexf").open("wb") as out:
        nodes, edges = export_graph(tmp_path / "a.db", out, graph_format="gexf")
    assert edges == expected_links
    ns = {"g": "http://gexf.net/1.3"}
    root = ET.parse(tmp_path / "g.gexf").getroot()
    assert len(root.findall(".//g:node", ns)) == nodes
    labels = {n.get("label") for n in root.findall(".//g:node", ns)}
    assert {"Hyresgästföreningen", "Bostadsbolaget Söderhem", "Holma"} <= labels
    with (tmp_path / "g.graphml").open("wb") as out:
        only_orgs = export_graph(tmp_path / "a.db", out, graph_format="graphml", labels=["ORG"])
    graph = ET.parse(tmp_path / "g.graphml").getroot()
    gml = {"g": "http://graphml.graphdrawing.org/xmlns"}
    kinds = {d.text for d in graph.findall(".//g:node/g:data[@key='label']", gml)}
    assert kinds == {"ORG"} and only_orgs[0] == 3


# --------------------------------------------------------------------------- the measure


def test_pair_scores_count_pairs_of_mentions():
    gold = ["a", "a", "a", "b", "b"]
    predicted = [1, 1, 2, 2, 2]
    scores = pair_scores(gold, predicted)
    assert (scores["true_pairs"], scores["predicted_pairs"], scores["gold_pairs"]) == (2, 4, 4)
    assert scores["precision"] == scores["recall"] == 0.5


def test_the_hand_made_set_is_grouped_and_placed_as_the_readme_says():
    documents, gold = read_gold(FIXTURES)
    assert len(gold) >= 150 and len({m.document for m in gold}) >= 20
    assert all(isinstance(m, GoldMention) for m in gold)
    texts = {d["id"]: d["text"] for d in documents}
    assert all(texts[m.document][m.start : m.end] == m.text for m in gold)
    result = evaluate_linking(documents, gold, linker=default_linker())
    assert result["pairwise"]["f1"] >= 0.90, result["errors"]
    assert result["geocoding"]["wrong"] == 0, result["geocoding"]["mistakes"]
    assert result["geocoding"]["accuracy"] >= 0.95


# --------------------------------------------------------------------------- over HTTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    """The sample sites crawled, annotated and linked by the batch, with the project's models."""
    from pipeline.nlp.annotate import Annotator
    from pipeline.nlp.ner import NerModelMissingError

    try:
        annotator = Annotator()
    except (NerModelMissingError, FileNotFoundError) as exc:
        pytest.skip(f"the NER and theme models are not trained yet: {exc}")
    work = tmp_path_factory.mktemp("entities")
    with SampleServer() as server:
        Batch(
            load_sources(SAMPLE_SOURCES),
            db_path=work / "pipeline.db",
            warc_dir=work / "warc",
            annotator=annotator,
            transport=server.transport(),
            progress=Progress(quiet=True),
        ).run()
    return work / "pipeline.db"


@pytest.fixture(scope="module")
def datasette(sample_db) -> Iterator[httpx.Client]:
    port = free_port()
    process = subprocess.Popen(
        [*PIPELINE, "serve", "--db", str(sample_db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.get("/-/versions.json")
            break
        except httpx.TransportError:
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "Datasette did not start"
            time.sleep(0.3)
    yield client
    client.close()
    process.terminate()
    process.wait(timeout=10)


def rows(client: httpx.Client, path: str, **params: str) -> list[dict]:
    response = client.get(path, params={"_shape": "array", "_size": "max", **params})
    assert response.status_code == 200, response.text[:300]
    return response.json()


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def test_an_organisation_page_shows_its_documents_aliases_and_partners(datasette, sample_db):
    [(org_id, name, aliases)] = query(
        sample_db,
        "SELECT id, name, aliases FROM entities WHERE label = 'ORG' AND key LIKE 'org:%'"
        " AND aliases IS NOT NULL AND document_count >= 2 ORDER BY document_count DESC LIMIT 1",
    )
    titles = {
        title
        for (title,) in query(
            sample_db,
            "SELECT DISTINCT d.title FROM mentions m JOIN documents d ON d.id = m.document_id"
            " WHERE m.entity_id = ?",
            (org_id,),
        )
    }
    partners = query(
        sample_db,
        "SELECT e.name FROM entity_links l JOIN entities e ON e.id ="
        " (CASE WHEN l.entity_a = ? THEN l.entity_b ELSE l.entity_a END)"
        " WHERE ? IN (l.entity_a, l.entity_b) AND e.label = 'ORG'"
        " ORDER BY l.documents DESC, e.name",
        (org_id, org_id),
    )
    assert len(titles) >= 2 and partners
    page = datasette.get(f"/pipeline/entities/{org_id}")
    assert page.status_code == 200
    assert html.escape(name) in page.text
    assert all(html.escape(alias) in page.text for alias in json.loads(aliases))
    assert all(html.escape(title) in page.text for title in titles)
    assert html.escape(partners[0][0]) in page.text, "the most frequent partner is listed"
    mentioned = rows(datasette, "/pipeline/mentions.json", entity_id=str(org_id), _labels="on")
    assert {row["document_id"]["label"] for row in mentioned} == titles
    linked = rows(datasette, "/pipeline/entity_links.json", entity_a=str(org_id))
    linked += rows(datasette, "/pipeline/entity_links.json", entity_b=str(org_id))
    assert (
        len(linked)
        == query(
            sample_db,
            "SELECT COUNT(*) FROM entity_links WHERE ? IN (entity_a, entity_b)",
            (org_id,),
        )[0][0]
    )


def test_places_in_the_sample_are_on_the_map_with_their_municipality(datasette, sample_db):
    places = rows(datasette, "/pipeline/entities.json", label="LOC", latitude__notnull="1")
    expected = query(
        sample_db, "SELECT name FROM entities WHERE label = 'LOC' AND latitude IS NOT NULL"
    )
    assert {p["name"] for p in places} == {name for (name,) in expected}
    districts = [p for p in places if p["key"].startswith("district:")]
    assert districts, "the sample names districts such as Lindängen and Navestad"
    assert all(p["municipality"] in ("Malmö", "Norrköping", "Örebro", "Uppsala") for p in districts)
    assert all(55 < p["latitude"] < 69.1 and 10.9 < p["longitude"] < 24.2 for p in places)
    assert not [p for p in places if p["key"].startswith("area:")], "no pins for countries"
    unplaced = rows(datasette, "/pipeline/entities.json", key="area:sverige")
    assert unplaced and unplaced[0]["latitude"] is None


def test_abbreviations_take_a_colon_in_the_genitive() -> None:
    from pipeline.nlp.gazetteer import genitive

    assert genitive("MKB") == "MKB:s"
    assert genitive("Hyresbostäder i Norrköping AB") == "Hyresbostäder i Norrköping AB:s"
    assert genitive("Agenda 2030") == "Agenda 2030:s"
    assert genitive("Boverket") == "Boverkets"
    assert genitive("Borås") == "Borås"
