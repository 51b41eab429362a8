"""Re-scoring stored documents after the theme model changed: ``pipeline reprocess --stage themes``.

The sample sites go through a full batch (NER and the shipped theme model) into a temporary
database. A "retrained" model is then made from the shipped one: a new version and every
threshold at zero, so that each Swedish document must end up with every theme. Re-scoring with
it must replace the theme rows of every Swedish document, store the new version and the terms
behind each score, and leave the mentions and the documents in other languages alone.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.batch import Batch
from pipeline.cli import cli
from pipeline.config import SAMPLE_SOURCES, load_sources
from pipeline.nlp.themes import (
    DEFAULT_THEME_MODEL,
    METADATA_FILE,
    MODEL_FILE,
    THRESHOLDS_FILE,
    ThemeModel,
    normalize_text,
)
from pipeline.nlp.versions import model_versions
from pipeline.progress import Progress
from pipeline.reprocess import reprocess, reprocess_themes
from pipeline.sample import SampleServer
from pipeline.store.db import open_db, pending_annotation
from pipeline.store.lock import batch_lock

pytestmark = pytest.mark.skipif(
    not (DEFAULT_THEME_MODEL / MODEL_FILE).is_file(),
    reason=f"no trained theme model at {DEFAULT_THEME_MODEL}",
)
RETRAINED = "themes-retrained-test"
SAMPLE = load_sources(SAMPLE_SOURCES)


@pytest.fixture(scope="module")
def annotated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample sites after one full batch; copy the database before changing it."""
    work = tmp_path_factory.mktemp("batch")
    with SampleServer() as server:
        Batch(
            SAMPLE,
            db_path=work / "pipeline.db",
            warc_dir=work / "warc",
            transport=server.transport(),
            progress=Progress(quiet=True),
        ).run()
    return work


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model under a new version, with every theme's threshold at zero."""
    model_dir = tmp_path_factory.mktemp("model") / "themes"
    shutil.copytree(DEFAULT_THEME_MODEL, model_dir)
    thresholds = json.loads((model_dir / THRESHOLDS_FILE).read_text(encoding="utf-8"))
    (model_dir / THRESHOLDS_FILE).write_text(json.dumps(dict.fromkeys(thresholds, 0.0)))
    metadata = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    metadata["version"] = RETRAINED
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata), encoding="utf-8")
    return model_dir


def _copy(annotated: Path, tmp_path: Path) -> Path:
    db_path = tmp_path / "pipeline.db"
    shutil.copyfile(annotated / "pipeline.db", db_path)
    return db_path


def _mentions(db) -> list[tuple]:
    return db.conn.execute(
        'SELECT document_id, entity_id, start, "end", text, label, role FROM mentions ORDER BY id'
    ).fetchall()


def test_the_batch_stores_each_theme_with_its_score_version_and_terms(annotated: Path) -> None:
    db = open_db(annotated / "pipeline.db")
    rows = db.conn.execute(
        "SELECT t.score, t.model_version, t.terms, d.text FROM document_themes t"
        " JOIN documents d ON d.id = t.document_id"
    ).fetchall()
    db.close()
    model = ThemeModel.load()
    assert len(rows) >= 30
    for score, version, terms, text in rows:
        words = set(re.findall(r"\w+", normalize_text(text).lower()))
        assert version == model.version
        assert 0.0 <= score <= 1.0
        assert json.loads(terms), "every stored theme names the terms behind its score"
        assert all(set(term.split()) <= words for term in json.loads(terms))


def test_every_swedish_document_gets_the_new_models_themes_scores_and_terms(
    annotated: Path, retrained: Path, tmp_path: Path
) -> None:
    db = open_db(_copy(annotated, tmp_path))
    model = ThemeModel.load(retrained)
    counts = reprocess_themes(db, tmp_path / "warc", SAMPLE, model_dir=retrained)
    swedish = db.conn.execute(
        "SELECT id, text FROM documents WHERE language = 'sv' OR language IS NULL ORDER BY id"
    ).fetchall()
    assert counts["documents"] == len(swedish) >= 30
    assert counts["themes"] == len(model.slugs) * len(swedish)
    for document_id, text in swedish:
        rows = db.conn.execute(
            "SELECT theme, score, model_version, terms FROM document_themes WHERE document_id = ?",
            (document_id,),
        ).fetchall()
        assert {theme for theme, *_ in rows} == set(model.slugs)
        expected = model.scores([text])[0]
        # Terms are read from the normalised text; a word pair may span a comma.
        words = set(re.findall(r"\w+", normalize_text(text).lower()))
        for theme, score, version, terms in rows:
            assert version == RETRAINED
            assert score == pytest.approx(expected[theme], abs=1e-4)
            assert all(set(term.split()) <= words for term in json.loads(terms))
    top = db.conn.execute(
        "SELECT terms FROM document_themes ORDER BY score DESC LIMIT 1"
    ).fetchone()
    assert json.loads(top[0]), "the best-scored theme must name the terms behind it"
    db.close()


def test_mentions_and_other_languages_are_left_alone(
    annotated: Path, retrained: Path, tmp_path: Path
) -> None:
    db = open_db(_copy(annotated, tmp_path))
    mentions = _mentions(db)
    assert mentions, "the batch stored mentions"
    foreign = db.conn.execute(
        "SELECT id, themes_model FROM documents WHERE language != 'sv'"
    ).fetchall()
    assert foreign, "the sample has a document in another language"
    reprocess_themes(db, tmp_path / "warc", SAMPLE, model_dir=retrained)
    assert _mentions(db) == mentions
    for document_id, themes_model in foreign:
        assert not db["document_themes"].count_where("document_id = ?", [document_id])
        stored = db.conn.execute(
            "SELECT themes_model FROM documents WHERE id = ?", (document_id,)
        ).fetchone()[0]
        assert stored == themes_model
    db.close()


def test_re_scored_documents_are_not_annotated_again_by_the_next_batch(
    annotated: Path, retrained: Path, tmp_path: Path
) -> None:
    db = open_db(_copy(annotated, tmp_path))
    ner, shipped = model_versions()
    assert pending_annotation(db, ner, shipped) == []
    assert pending_annotation(db, ner, RETRAINED), "a new model version makes documents due"
    reprocess_themes(db, tmp_path / "warc", SAMPLE, model_dir=retrained)
    due = pending_annotation(db, ner, RETRAINED)
    languages = {row[0]: row[1] for row in db.conn.execute("SELECT id, language FROM documents")}
    assert all(languages[document.id] not in ("sv", None) for document in due)
    db.close()


def test_only_the_chosen_sources_are_re_scored(
    annotated: Path, retrained: Path, tmp_path: Path
) -> None:
    db = open_db(_copy(annotated, tmp_path))
    counts = reprocess_themes(
        db, tmp_path / "warc", SAMPLE, source_ids=["kommun"], model_dir=retrained
    )
    versions = dict(
        db.conn.execute(
            "SELECT d.source_id, GROUP_CONCAT(DISTINCT t.model_version) FROM document_themes t"
            " JOIN documents d ON d.id = t.document_id GROUP BY d.source_id"
        ).fetchall()
    )
    kommun = db["documents"].count_where("source_id = 'kommun' AND language = 'sv'")
    assert counts["documents"] == kommun
    assert versions["kommun"] == RETRAINED
    assert RETRAINED not in versions["pressrum"] and RETRAINED not in versions["bloggen"]
    db.close()


def test_the_cli_re_scores_with_the_shipped_model_and_waits_for_no_batch(
    annotated: Path, tmp_path: Path
) -> None:
    db_path = _copy(annotated, tmp_path)
    arguments = ["reprocess", "--stage", "themes", "--db", str(db_path)]
    with batch_lock(db_path):
        locked = CliRunner().invoke(cli, arguments)
    assert locked.exit_code != 0 and "another batch" in locked.output
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    documents, themes, empty = result.output.strip().splitlines()[-1].split(", ")
    assert documents.startswith("documents ") and int(documents.split()[1]) >= 30
    assert themes.startswith("themes ") and empty == "empty 0"
    db = open_db(db_path)
    assert {row[0] for row in db.conn.execute("SELECT model_version FROM document_themes")} == {
        ThemeModel.load().version
    }
    db.close()


def test_the_stage_runs_under_the_batch_lock(annotated: Path, retrained: Path, tmp_path: Path):
    db_path = _copy(annotated, tmp_path)
    with batch_lock(db_path), pytest.raises(RuntimeError, match="another batch"):
        reprocess("themes", db_path, tmp_path / "warc", SAMPLE)
