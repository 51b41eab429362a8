"""Re-extraction from the WARC archive: ``pipeline reprocess --stage extract``.

The sample sites are crawled into a temporary database; then the sample server is stopped, the
press room's extraction rules are changed in a copy of the sources file, and the stored
responses are extracted again. Documents whose text changed get a new version and become due
for annotation; documents whose text stayed the same keep their version and their annotation
and only get the new metadata; nothing is fetched.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from annotators import RecordingAnnotator
from click.testing import CliRunner

from pipeline.batch import Batch
from pipeline.cli import cli
from pipeline.config import SAMPLE_SOURCES, load_sources, parse_sources
from pipeline.extract import extract
from pipeline.reprocess import reprocess, reprocess_extract
from pipeline.sample import SampleServer
from pipeline.store.db import open_db, pending_annotation, save_document
from pipeline.store.lock import batch_lock

#: The press room's rules, changed: list items are cut from the body (a text change for the
#: releases that have lists) and the date selector no longer matches, so the date comes from
#: the generic cascade, which knows it as a publication date (a metadata change for all).
CHANGED_RULES = (
    ('      date: ".release-date"\n', '      date: ".no-such-date"\n'),
    (
        '      remove: [".share", ".related", ".release-boilerplate"]\n',
        '      remove: [".share", ".related", ".release-boilerplate", ".release-body li"]\n',
    ),
)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample crawled once, with the server stopped afterwards."""
    work = tmp_path_factory.mktemp("reprocess")
    with SampleServer() as server:
        Batch(
            load_sources(SAMPLE_SOURCES),
            db_path=work / "pipeline.db",
            warc_dir=work / "warc",
            annotator=RecordingAnnotator(),  # type: ignore[arg-type]
            transport=server.transport(),
        ).run()
    return work


def _changed_config(tmp_path: Path):
    text = SAMPLE_SOURCES.read_text(encoding="utf-8")
    for old, new in CHANGED_RULES:
        assert old in text, f"the sample sources file no longer has {old!r}"
        text = text.replace(old, new)
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return parse_sources(text, path), path


def _snapshot(db) -> dict[str, tuple]:
    return {
        row[0]: tuple(row[1:])
        for row in db.conn.execute(
            "SELECT url, source_id, version, content_hash, annotated_hash, date_kind, text"
            " FROM documents"
        )
    }


def test_changed_rules_update_stored_documents_without_fetching(crawled: Path, tmp_path: Path):
    work = tmp_path / "copy"
    work.mkdir()
    for name in ("pipeline.db",):
        (work / name).write_bytes((crawled / name).read_bytes())
    db = open_db(work / "pipeline.db")
    before = _snapshot(db)
    fetches = db["fetches"].count
    config, _ = _changed_config(tmp_path)

    counts = reprocess_extract(db, crawled / "warc", config)

    after = _snapshot(db)
    assert db["fetches"].count == fetches, "re-extraction reads the archive, it fetches nothing"
    changed = [url for url in after if after[url][2] != before[url][2]]
    press = [url for url in after if after[url][0] == "pressrum"]
    assert changed and set(changed) < set(press), "only press releases with lists change text"
    for url in changed:
        old_paragraphs = set(before[url][5].split("\n\n"))
        new_paragraphs = set(after[url][5].split("\n\n"))
        assert new_paragraphs < old_paragraphs, "list items were removed, nothing else changed"
        assert after[url][1] == 2
    for url in set(press) - set(changed):
        assert after[url][1] == 1 and after[url][3] == after[url][2], "still annotated"
        assert (before[url][4], after[url][4]) == (None, "published")
    for url in set(after) - set(press):
        assert after[url] == before[url]
    pending = {d.id for d in pending_annotation(db, "ner-test", "themes-test")}
    changed_ids = {
        row[0]
        for row in db.conn.execute(
            f"SELECT id FROM documents WHERE url IN ({', '.join('?' for _ in changed)})", changed
        )
    }
    assert pending == changed_ids, "exactly the documents with a new text are annotated again"
    versions = db.conn.execute("SELECT COUNT(*) FROM document_versions WHERE version = 2")
    assert versions.fetchone()[0] == len(changed)
    assert counts["changed"] == len(changed)
    assert counts["updated"] == len(press) - len(changed)
    assert counts["unchanged"] == len(after) - len(press)
    assert counts["failed"] == 0

    again = reprocess_extract(db, crawled / "warc", config)
    assert again["unchanged"] == len(after), "a second run over the same rules changes nothing"
    db.close()


def test_only_the_chosen_sources_are_extracted_again(crawled: Path, tmp_path: Path):
    (tmp_path / "pipeline.db").write_bytes((crawled / "pipeline.db").read_bytes())
    db = open_db(tmp_path / "pipeline.db")
    config, _ = _changed_config(tmp_path)
    counts = reprocess_extract(db, crawled / "warc", config, source_ids=["kommun"])
    kommun = db["documents"].count_where("source_id = 'kommun'")
    db.close()
    assert counts == {"unchanged": kommun}


def test_an_unreadable_archive_record_fails_that_document_only(crawled: Path, tmp_path: Path):
    (tmp_path / "pipeline.db").write_bytes((crawled / "pipeline.db").read_bytes())
    warc = tmp_path / "warc"
    warc.mkdir()
    for path in (crawled / "warc").iterdir():
        (warc / path.name).write_bytes(path.read_bytes())
    db = open_db(tmp_path / "pipeline.db")
    broken = db.conn.execute(
        "SELECT f.warc_file, f.warc_offset FROM documents d JOIN fetches f ON f.id = d.fetch_id"
        " LIMIT 1"
    ).fetchone()
    data = bytearray((warc / broken[0]).read_bytes())
    data[broken[1] : broken[1] + 64] = b"\0" * 64
    (warc / broken[0]).write_bytes(bytes(data))
    counts = reprocess_extract(db, warc, load_sources(SAMPLE_SOURCES))
    total = db["documents"].count
    db.close()
    assert counts["failed"] == 1
    assert counts["unchanged"] == total - 1


def test_the_cli_runs_the_stage_and_refuses_while_a_batch_holds_the_database(
    crawled: Path, tmp_path: Path
):
    db_path = tmp_path / "pipeline.db"
    db_path.write_bytes((crawled / "pipeline.db").read_bytes())
    _, sources = _changed_config(tmp_path)
    arguments = [
        "reprocess", "--stage", "extract", "--sources", str(sources), "--db", str(db_path),
        "--warc-dir", str(crawled / "warc"),
    ]  # fmt: skip
    with batch_lock(db_path):
        locked = CliRunner().invoke(cli, arguments)
    assert locked.exit_code != 0 and "another batch" in locked.output
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("changed ")
    unknown = CliRunner().invoke(cli, [*arguments, "--source", "nosuch"])
    assert unknown.exit_code != 0 and "nosuch" in unknown.output
    missing = CliRunner().invoke(cli, ["reprocess", "--stage", "nosuch", "--db", str(db_path)])
    assert missing.exit_code == 2, "only the stages that exist can be chosen"


def test_reprocess_takes_the_batch_lock(crawled: Path, tmp_path: Path):
    db_path = tmp_path / "pipeline.db"
    db_path.write_bytes((crawled / "pipeline.db").read_bytes())
    with batch_lock(db_path), pytest.raises(RuntimeError, match="another batch"):
        reprocess("extract", db_path, crawled / "warc", load_sources(SAMPLE_SOURCES))


def test_a_contact_block_that_names_no_person_is_stored_without_it(crawled: Path, tmp_path: Path):
    # A switchboard entry ("Socialtjänstens mottagning, 0980-…") is not a person; the contacts
    # table holds people, and such an entry must not stop the document from being stored.
    page = Path(__file__).parent / "fixtures" / "extraction_set" / "kommun_07_iso_tid_oppettider"
    extracted = extract(page.with_suffix(".html").read_text(encoding="utf-8"))
    assert [c.name for c in extracted.contacts] == [None]
    (tmp_path / "pipeline.db").write_bytes((crawled / "pipeline.db").read_bytes())
    db = open_db(tmp_path / "pipeline.db")
    url = db.conn.execute("SELECT url FROM documents WHERE source_id = 'kommun'").fetchone()[0]
    saved = save_document(
        db, url=url, source_id="kommun", kind="news", extracted=extracted, fetch_id=None
    )
    stored = db["contacts"].count_where("document_id = ?", [saved.document_id])
    db.close()
    assert saved.outcome == "changed"
    assert stored == 0
