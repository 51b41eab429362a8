"""The whole batch on the bundled sample sites: real HTTP on 127.0.0.1, a real SQLite file."""

import fcntl
import subprocess
import sys
import threading

import pytest

from pipeline.batch import Batch
from pipeline.config import SAMPLE_SOURCES, load_sources
from pipeline.progress import Progress
from pipeline.sample import SampleServer
from pipeline.store.db import open_db
from pipeline.store.lock import BatchLockedError, batch_lock


@pytest.fixture(scope="module")
def sample_config():
    return load_sources(SAMPLE_SOURCES)


@pytest.fixture(scope="module")
def server():
    with SampleServer() as running:
        yield running


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, sample_config, server):
    """One full batch over the sample, shared by the tests that read its result."""
    work = tmp_path_factory.mktemp("batch")
    batch = Batch(
        sample_config,
        db_path=work / "pipeline.db",
        warc_dir=work / "warc",
        transport=server.transport(),
        progress=Progress(quiet=True),
    )
    summary = batch.run()
    db = open_db(work / "pipeline.db")
    yield batch, summary, db, work
    db.close()


def test_the_sample_batch_stores_every_source_with_entities_and_themes(first_run):
    _, summary, db, _ = first_run
    assert summary.documents >= 30
    per_source = dict(
        db.conn.execute("SELECT source_id, COUNT(*) FROM documents GROUP BY source_id").fetchall()
    )
    assert set(per_source) == {"pressrum", "bloggen", "kommun"}
    assert all(count >= 8 for count in per_source.values()), per_source
    assert {"PER", "ORG", "LOC"} <= set(summary.entities)
    assert summary.themes, "the classifier assigned no theme to any sample document"
    run = db["runs"].get(summary.run_id)
    assert run["status"] == "completed"
    assert run["new"] == summary.documents
    assert run["failed"] == 0


def test_documents_have_titles_dates_and_text_without_boilerplate(first_run):
    _, _, db, _ = first_run
    rows = list(db.query("SELECT url, title, published, text FROM documents"))
    for row in rows:
        assert row["title"], row["url"]
        assert row["published"], row["url"]
        assert len(row["text"]) > 300, row["url"]
        assert "kakor" not in row["text"].lower(), f"cookie banner left in {row['url']}"
    assert not any(" | " in row["title"] for row in rows), "site-name suffix left in a title"


def test_robots_txt_is_obeyed(first_run):
    _, _, db, _ = first_run
    fetched = [row[0] for row in db.conn.execute("SELECT url FROM fetches")]
    assert fetched
    assert not [url for url in fetched if "/intern" in url], "robots.txt disallows /intern"


def test_every_response_is_archived_in_a_warc_file(first_run):
    _, _, db, work = first_run
    rows = list(db.query("SELECT warc_file, warc_offset FROM fetches WHERE status = 200"))
    assert rows
    assert all(row["warc_file"] and row["warc_offset"] is not None for row in rows)
    assert (work / "warc" / rows[0]["warc_file"]).stat().st_size > 0


def test_a_document_not_in_swedish_is_kept_but_not_annotated(first_run):
    _, _, db, _ = first_run
    foreign = list(db.query("SELECT id FROM documents WHERE language != 'sv'"))
    assert foreign, "the sample has an English press release"
    for row in foreign:
        mentions = db["mentions"].count_where("document_id = ?", [row["id"]])
        assert mentions == 0


def test_mentions_point_at_their_text_in_the_document(first_run):
    _, _, db, _ = first_run
    rows = db.query(
        'SELECT m.start, m."end", m.text, d.text AS body FROM mentions m'
        " JOIN documents d ON d.id = m.document_id LIMIT 200"
    )
    for row in rows:
        assert row["body"][row["start"] : row["end"]] == row["text"]


def test_a_second_run_over_unchanged_sites_fetches_and_annotates_nothing_new(
    first_run, sample_config, server
):
    batch, summary, _, work = first_run
    again = Batch(
        sample_config,
        db_path=work / "pipeline.db",
        warc_dir=work / "warc",
        annotator=batch.annotator,
        transport=server.transport(),
    ).run()
    assert again.counts["new"] == 0
    assert again.counts["changed"] == 0
    assert again.counts["annotated"] == 0
    assert again.counts["fetched"] == 0, "document pages are not due before their re-crawl interval"
    assert again.counts["not_modified"] >= 3, "feeds, sitemaps and listings answer 304"
    assert again.documents == summary.documents


def test_two_batches_cannot_run_at_once_on_one_database(tmp_path, sample_config):
    db_path = tmp_path / "pipeline.db"
    holding, release = threading.Event(), threading.Event()

    def hold():
        with batch_lock(db_path):
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    try:
        with pytest.raises(BatchLockedError, match="another batch is already running"):
            Batch(sample_config, db_path=db_path, warc_dir=tmp_path / "warc").run()
    finally:
        release.set()
        holder.join()


def test_a_batch_refused_while_the_holder_writes_its_pid_still_names_it(tmp_path):
    """The holder writes its pid just after taking the lock; a refusal in between waits for it."""
    db_path = tmp_path / "pipeline.db"
    lock_path = tmp_path / "pipeline.db.lock"
    with open(lock_path, "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken, pid not yet written
        writer = threading.Timer(0.2, lambda: lock_path.write_text("4242\n"))
        writer.start()
        with pytest.raises(BatchLockedError, match=r"\(pid 4242\)"), batch_lock(db_path):
            pass
        writer.join()


def test_the_main_process_finds_what_to_annotate_without_importing_the_nlp_libraries():
    """A scheduled run that finds nothing new should not pay for importing spaCy and
    scikit-learn (two seconds of CPU): annotation runs in worker processes, the versions that
    decide what needs annotating come from the models' metadata files, and the results the
    workers send back are types whose modules import neither."""
    probe = (
        "import sys\n"
        "from pipeline.batch import Batch\n"
        "from pipeline.nlp.annotate import Annotation\n"
        "from pipeline.workers import AnnotateOutcome\n"
        "from pipeline.nlp.versions import model_versions\n"
        "ner, themes = model_versions()\n"
        "assert ner.startswith('pipeline_ner-') and '+rules-' in ner, ner\n"
        "print(sorted(m for m in ('spacy', 'sklearn', 'scipy', 'thinc') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
