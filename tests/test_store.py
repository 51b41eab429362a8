"""The SQLite store: schema, versions, de-duplication, annotations and Swedish full-text search."""

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from pipeline.store.db import (
    content_hash,
    finish_run,
    open_db,
    pending_annotation,
    refresh_entity_counts,
    save_annotations,
    save_document,
    start_run,
    sync_sources,
    sync_themes,
)


@dataclass
class Page:
    """Stands in for an extraction result: only the fields the store reads."""

    text: str
    title: str = "Fler Malmöbor öppnar upp sina hem"
    published: str | None = "2017-02-27T16:10"
    date_precision: str | None = "minute"
    date_kind: str | None = "updated"
    author: str | None = None
    language: str | None = "sv"
    kind: str | None = None
    contacts: list = field(default_factory=list)


TEXT = (
    "Ett tjugotal nya boenden – det blev resultatet av att Refugees Welcome Sweden och "
    "Malmö stad annonserade sitt samarbete.\n\nNu matchas nyanlända med hyresvärdar i Malmö."
)
URL = "http://kommun.example/nyheter/fler-malmobor-oppnar-sina-hem.html"


@pytest.fixture
def db(tmp_path):
    database = open_db(tmp_path / "pipeline.db")
    source = SimpleNamespace(
        id="kommun", name="Malmö stad", kind="news", hosts=("kommun.example",), recrawl_seconds=60
    )
    sync_sources(database, [source])
    sync_themes(database, [SimpleNamespace(slug="nyanlanda", label="Nyanlända", definition="")])
    for url in (URL, URL + "?mirror=1", URL.replace(".html", "-2.html")):
        database["pages"].insert(
            {"url": url, "source_id": "kommun", "role": "document", "fetch_url": url,
             "first_seen": "2026-11-22T06:00:00Z"}
        )  # fmt: skip
    yield database
    database.close()


def save(db, text=TEXT, url=URL, **fields):
    return save_document(
        db, url=url, source_id="kommun", kind="news", extracted=Page(text, **fields), fetch_id=None
    )


def test_the_schema_has_real_foreign_keys_indexes_and_a_swedish_fts(db):
    assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    fks = {fk.other_table for fk in db["mentions"].foreign_keys}
    assert fks == {"documents", "entities"}
    assert "documents_published" in {index.name for index in db["documents"].indexes}
    fts_sql = db["documents_fts"].schema
    assert "remove_diacritics 0" in fts_sql


def test_a_new_document_gets_version_one_and_a_version_row(db):
    saved = save(db)
    assert saved.outcome == "new"
    document = db["documents"].get(saved.document_id)
    assert document["version"] == 1
    assert document["kind"] == "news"
    assert document["content_hash"] == content_hash(TEXT)
    assert db["document_versions"].count == 1


def test_unchanged_text_is_not_a_new_version_even_when_rewrapped(db):
    save(db)
    again = save(db, text=TEXT.replace(" nya ", "\n   nya "))
    assert again.outcome == "unchanged"
    assert db["document_versions"].count == 1


def test_changed_text_keeps_the_old_version(db):
    first = save(db)
    changed = save(db, text=TEXT + "\n\nUppdatering: nu finns 25 boenden.")
    assert changed.outcome == "changed"
    assert changed.document_id == first.document_id
    versions = db.conn.execute(
        "SELECT version, text FROM document_versions ORDER BY version"
    ).fetchall()
    assert [v for v, _ in versions] == [1, 2]
    assert "25 boenden" not in versions[0][1]
    assert db["documents"].get(first.document_id)["version"] == 2


def test_the_same_text_at_another_url_is_a_duplicate_not_a_second_document(db):
    first = save(db)
    mirror = save(db, url=URL + "?mirror=1")
    assert mirror.outcome == "duplicate"
    assert mirror.document_id == first.document_id
    assert db["documents"].count == 1


def test_contacts_are_replaced_with_the_new_version(db):
    person = SimpleNamespace(
        name="Lina Berg", role="kommunikatör", organisation="Malmö stad",
        email="lina.berg@kommun.example", phone="040-34 10 00",
    )  # fmt: skip
    saved = save(db, contacts=[person])
    save(db, text=TEXT + " Mer.", contacts=[person])
    rows = list(db["contacts"].rows_where("document_id = ?", [saved.document_id]))
    assert [r["name"] for r in rows] == ["Lina Berg"]


def test_annotations_are_pending_until_saved_for_the_current_hash_and_models(db):
    save(db)
    pending = pending_annotation(db, "ner-1", "themes-1")
    assert len(pending) == 1
    document = pending[0]
    entity = SimpleNamespace(start=54, end=65, label="ORG", text="Malmö stad")
    save_annotations(
        db, document, [entity], [("nyanlanda", 0.91, ["nyanlända", "hyresvärd"])],
        ner_model="ner-1", themes_model="themes-1",
    )  # fmt: skip
    assert pending_annotation(db, "ner-1", "themes-1") == []
    assert len(pending_annotation(db, "ner-2", "themes-1")) == 1, "a new model re-annotates"
    save(db, text=TEXT + " Ny mening.")
    assert len(pending_annotation(db, "ner-1", "themes-1")) == 1, "a new text re-annotates"


def test_entity_ids_are_stable_when_a_document_is_annotated_again(db):
    save(db)
    document = pending_annotation(db, "ner-1", "t")[0]
    malmo = SimpleNamespace(start=0, end=10, label="ORG", text="Malmö stad")
    save_annotations(db, document, [malmo], [], ner_model="ner-1", themes_model="t")
    first_id = db["entities"].rows_where("name = ?", ["Malmö stad"]).__next__()["id"]
    save_annotations(db, document, [malmo, malmo], [], ner_model="ner-2", themes_model="t")
    refresh_entity_counts(db)
    row = db["entities"].get(first_id)
    assert (row["mention_count"], row["document_count"]) == (2, 1)
    assert db["entities"].count == 1


def test_full_text_search_keeps_swedish_letters_apart(db):
    save(db, text="Hyresgästerna får ett nytt boinflytande i Rosengård.")
    save(db, url=URL.replace(".html", "-2.html"), text="En far och hans barn flyttade till Husby.")

    def search(word):
        return [
            row[0]
            for row in db.conn.execute(
                "SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?", (word,)
            )
        ]

    assert len(search("får")) == 1
    assert len(search("far")) == 1
    assert search("får") != search("far")


def test_a_run_left_running_by_a_killed_batch_is_marked_interrupted(db):
    killed = start_run(db, ["kommun"], pid=1)
    current = start_run(db, ["kommun"], pid=2)
    assert db["runs"].get(killed)["status"] == "interrupted"
    finish_run(db, current, {"fetched": 3, "new": 2}, status="completed", duration=1.5)
    row = db["runs"].get(current)
    assert (row["status"], row["fetched"], row["new"], row["failed"]) == ("completed", 3, 2, 0)
