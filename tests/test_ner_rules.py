"""Specification of the rules that run after the NER model: gazetteer names, clean entity edges,
no common words as names; and of the domain evaluation set that measures them."""

from __future__ import annotations

import hashlib
import json
from itertools import pairwise
from pathlib import Path

import pytest
import spacy
from click.testing import CliRunner
from spacy.tokens import Doc, Span

from pipeline.cli import cli
from pipeline.nlp.ner import (
    DEFAULT_NER_MODEL,
    SHARED_DIR,
    EvaluationTextError,
    load_ner,
    read_jsonl,
    with_texts,
)
from pipeline.nlp.ner_lexicon import (
    COMMON_WORDS_FILE,
    build_common_words,
    read_common_words,
    rules_version,
)
from pipeline.nlp.ner_rules import EntityEdges, trimmed
from pipeline.nlp.versions import model_versions

REPO = Path(__file__).resolve().parents[1]
DOMAIN_SET = REPO / "corpus" / "labels" / "ner-domain.jsonl"

needs_model = pytest.mark.skipif(
    not (DEFAULT_NER_MODEL / "config.cfg").is_file(), reason="no trained model in models/ner"
)
needs_shared = pytest.mark.skipif(
    not (SHARED_DIR / "seeds").is_dir(), reason=f"the shared data is not at {SHARED_DIR}"
)

NLP = spacy.blank("sv")


def doc_with(text: str, *entities: tuple[str, str]) -> Doc:
    """A document whose entities are the given (surface, label) pairs, found in order."""
    doc = NLP(text)
    spans, offset = [], 0
    for surface, label in entities:
        start = text.index(surface, offset)
        offset = start + len(surface)
        span = doc.char_span(start, offset, label=label)
        assert span is not None, surface
        spans.append(span)
    doc.ents = spans
    return doc


def texts_of(doc: Doc) -> list[tuple[str, str]]:
    return [(ent.text, ent.label_) for ent in doc.ents]


def test_entities_lose_markup_at_their_edges() -> None:
    doc = doc_with("# Regeringen besöker [Migrationsverkets kontor", ("# Regeringen", "ORG"))
    assert trimmed(doc.ents[0]).text == "Regeringen"
    doc = doc_with("se [Migrationsverkets] kontor", ("[Migrationsverkets]", "ORG"))
    assert trimmed(doc.ents[0]).text == "Migrationsverkets"


def test_an_entity_ends_at_a_line_break() -> None:
    text = "Kontakt: Sveriges Allmännytta\n\nBox 474, Stockholm"
    doc = doc_with(text, ("Sveriges Allmännytta\n\nBox", "ORG"))
    assert trimmed(doc.ents[0]).text == "Sveriges Allmännytta"


def test_a_title_before_a_name_is_not_part_of_the_person() -> None:
    text = "Det säger socialminister Jakob Forssmed och Statsrådet Anna Berg."
    doc = doc_with(text, ("socialminister Jakob Forssmed", "PER"), ("Statsrådet Anna Berg", "PER"))
    assert [trimmed(ent).text for ent in doc.ents] == ["Jakob Forssmed", "Anna Berg"]


def test_a_one_word_person_named_like_a_title_is_kept() -> None:
    doc = doc_with("Intervju med Chef i dag.", ("Chef", "PER"))
    assert trimmed(doc.ents[0]).text == "Chef"


def test_a_span_of_only_markup_disappears() -> None:
    doc = doc_with("Se ## här", ("##", "LOC"))
    assert trimmed(doc.ents[0]) is None


def edges(common: set[str]) -> EntityEdges:
    component = EntityEdges()
    component.common_words = frozenset(common)
    return component


def test_a_common_word_capitalised_by_its_position_is_not_a_name() -> None:
    text = "Kommunen bygger nytt. Projektet startar i Malmö.\nMåndag: möte med Kommunen Syd."
    doc = doc_with(
        text,
        ("Kommunen", "ORG"),
        ("Projektet", "ORG"),
        ("Malmö", "LOC"),
        ("Måndag", "PER"),
        ("Kommunen", "ORG"),
    )
    result = edges({"kommunen", "projektet", "måndag"})(doc)
    # The last "Kommunen" is capitalised inside a sentence, so it may well be a name; the
    # capitalised word after it is then part of that name.
    assert texts_of(result) == [("Malmö", "LOC"), ("Kommunen Syd", "ORG")]


def test_a_common_word_the_gazetteer_named_is_kept() -> None:
    doc = doc_with("Vision kräver mer.", ("Vision", "ORG"))
    doc.ents = [Span(doc, 0, 1, label="ORG", span_id="org:vision")]
    assert texts_of(edges({"vision"})(doc)) == [("Vision", "ORG")]


def test_common_words_are_those_written_in_lower_case_far_more_often() -> None:
    texts = [
        "Kommunen bygger. I kommunen finns skolor. Hela kommunen deltar, och kommunen växer.",
        "Vi träffade Berg i går. Berg sa att berg finns i Berg och hos Berg.",
        "Malmö växer. Boende i Malmö trivs.",
    ]
    words = build_common_words(texts, minimum=3)
    assert "kommunen" in words
    assert "berg" not in words  # a surname more often than a mountain here
    assert "malmö" not in words


def test_the_rules_version_follows_the_common_words(tmp_path: Path) -> None:
    assert read_common_words(tmp_path) == frozenset()
    (tmp_path / COMMON_WORDS_FILE).write_text("kommunen\nprojektet\n", encoding="utf-8")
    assert read_common_words(tmp_path) == {"kommunen", "projektet"}
    assert rules_version(read_common_words(tmp_path)) != rules_version(frozenset())


@needs_model
def test_the_gazetteer_corrects_the_model_where_they_overlap() -> None:
    text = "Malmö stad och Hyresgästföreningen södra Skåne bjuder in till möte i Rosengård."
    found = texts_of(load_ner()(text))
    assert ("Malmö stad", "ORG") in found
    assert ("Hyresgästföreningen södra Skåne", "ORG") in found
    assert ("Rosengård", "LOC") in found


@needs_model
def test_the_bare_model_is_still_available_for_measuring_the_rules() -> None:
    assert load_ner(rules=False).pipe_names == ["tok2vec", "ner"]
    assert load_ner().pipe_names == ["tok2vec", "ner", "gazetteer_ruler", "entity_edges"]


@needs_model
def test_stored_ner_version_names_the_model_and_the_rules() -> None:
    nlp = load_ner()
    ner_version, _ = model_versions()
    assert ner_version == f"{nlp.meta['name']}-{nlp.meta['version']}+{nlp.meta['rules']}"


# --------------------------------------------------------------------------- the domain set


def test_records_that_point_at_a_shared_text_get_it_checked_and_cut(tmp_path: Path) -> None:
    text = "Boverket och Malmö stad samverkar.\n\nMer text som inte annoterades."
    (tmp_path / "press").mkdir()
    (tmp_path / "press" / "a.md").write_text(text, encoding="utf-8")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    record = {"id": "a", "path": "press/a.md", "sha256": digest, "limit": 34, "entities": []}
    [resolved] = with_texts([record], tmp_path)
    assert resolved["text"] == "Boverket och Malmö stad samverkar."
    with pytest.raises(EvaluationTextError, match="has changed"):
        list(with_texts([{**record, "sha256": "0" * 64}], tmp_path))
    with pytest.raises(EvaluationTextError, match="not found"):
        list(with_texts([{**record, "path": "press/b.md"}], tmp_path))


def test_records_with_their_own_text_pass_unchanged() -> None:
    record = {"id": "x", "text": "Karin Holm", "entities": [[0, 10, "PER"]]}
    assert list(with_texts([record])) == [record]


def test_the_domain_set_is_well_formed() -> None:
    records = list(read_jsonl(DOMAIN_SET))
    assert len(records) >= 15
    assert len({r["id"] for r in records}) == len(records)
    for record in records:
        assert set(record) == {"id", "path", "sha256", "limit", "entities"}
        spans = record["entities"]
        assert spans == sorted(spans)
        assert all(label in ("PER", "ORG", "LOC") for _, _, label in spans)
        assert all(a[1] <= b[0] for a, b in pairwise(spans))


@needs_shared
def test_every_domain_span_is_a_whole_token_name_in_its_text() -> None:
    labels = set()
    for record in with_texts(read_jsonl(DOMAIN_SET)):
        doc = NLP(record["text"])
        for start, end, label in record["entities"]:
            surface = record["text"][start:end]
            assert surface == surface.strip() and surface, (record["id"], start)
            assert doc.char_span(start, end) is not None, (record["id"], surface)
            labels.add(label)
    assert labels == {"PER", "ORG", "LOC"}


@needs_model
@needs_shared
def test_evaluate_ner_reads_the_domain_set_texts_from_shared() -> None:
    result = CliRunner().invoke(cli, ["evaluate-ner", str(DOMAIN_SET)])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["documents"] == len(list(read_jsonl(DOMAIN_SET)))
    assert scores["labels"]["ORG"]["tp"] > 0


def test_evaluate_ner_explains_a_changed_shared_text(tmp_path: Path) -> None:
    record = {"id": "a", "path": "seeds/finns-inte.txt", "sha256": "0" * 64, "limit": None}
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({**record, "entities": []}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["evaluate-ner", str(path)])
    assert result.exit_code != 0
    assert "finns-inte.txt" in result.output
    assert "Traceback" not in result.output


def test_an_organisation_keeps_its_legal_form() -> None:
    text = "Heimstaden AB (publ) och Akelius Residential Property AB köper. MKB\nAB står här."
    doc = doc_with(
        text, ("Heimstaden", "ORG"), ("Akelius Residential Property", "ORG"), ("MKB", "ORG")
    )
    assert [trimmed(ent).text for ent in doc.ents] == [
        "Heimstaden AB (publ)",
        "Akelius Residential Property AB",
        "MKB",  # a form on the next line is not part of the name
    ]


def test_an_organisation_found_as_only_its_common_noun_takes_the_name_after_it() -> None:
    text = "Hyresgästerna och Bostadsbolaget Söderhem Norr träffas. Kommunen Bjuder in."
    doc = doc_with(text, ("Bostadsbolaget", "ORG"), ("Kommunen", "ORG"))
    result = edges({"bostadsbolaget", "kommunen", "bjuder"})(doc)
    # "Kommunen" opens a sentence and is dropped; "Bjuder" is a common word, not a name.
    assert texts_of(result) == [("Bostadsbolaget Söderhem Norr", "ORG")]
