"""A scaled-down version of ``make bench``: 300 real government press releases as a website.

The site (:mod:`pipeline.sitegen`) is built from ``../shared/data/press/regeringen`` and has what
a real press room has: pages with site furniture, a paginated listing, an RSS feed and a sitemap
index with ``lastmod``. It is crawled four times on one database, as the scheduler would: a first
full crawl, again at once, again after the re-crawl interval, and after five pages changed and
three were published. The full 8,500 pages are crawled by ``make bench`` only.

This is a crawling test, so the batch gets :class:`RecordingAnnotator` (the real annotator's
interface, recording what it is sent): what matters is which documents reach annotation.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from annotators import RecordingAnnotator

import pipeline.batch as batch_module
from pipeline.batch import Batch, RunSummary
from pipeline.config import load_sources
from pipeline.sitegen import CORPUS_DIR, PressSite, PressSiteServer, load_articles

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CORPUS_DIR.is_dir(),
        reason=f"the press-release corpus is not at {CORPUS_DIR} (../shared/data is absent)",
    ),
]

SIZE = 300


class Crawls:
    """One site, one database, and the batches run on them in turn."""

    def __init__(self, work: Path, site: PressSite, server: PressSiteServer):
        self.site = site
        self.server = server
        self.db_path = work / "pipeline.db"
        sources = work / "sources.yaml"
        sources.write_text(server.sources_yaml(recrawl="6h"), encoding="utf-8")
        self.annotator = RecordingAnnotator()
        self.batch = Batch(
            load_sources(sources),
            db_path=self.db_path,
            warc_dir=work / "warc",
            annotator=self.annotator,  # type: ignore[arg-type]
        )
        self.statuses: list[Counter[int]] = []
        self.annotated: list[int] = []

    def run(self) -> RunSummary:
        self.server.reset()
        self.annotator.texts.clear()
        summary = self.batch.run()
        self.statuses.append(self.server.statuses())
        self.annotated.append(len(self.annotator.texts))
        return summary

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql).fetchall()

    def document_requests(self) -> Counter[int]:
        """Statuses of the requests for article pages since the last reset."""
        counts: Counter[int] = Counter()
        for (path, status), n in self.server.requests.items():
            if urlsplit(path).path.count("/") == 5:  # /<kind>/<yyyy>/<mm>/<slug>/
                counts[status] += n
        return counts


@pytest.fixture(scope="module")
def crawls() -> Iterator[Crawls]:
    site = PressSite(articles=load_articles(), limit=SIZE, reserve=3)
    with tempfile.TemporaryDirectory() as work, PressSiteServer(site) as server:
        yield Crawls(Path(work), site, server)


@pytest.fixture(scope="module")
def first(crawls: Crawls) -> RunSummary:
    return crawls.run()


def test_the_first_crawl_finds_and_stores_every_page(crawls: Crawls, first: RunSummary) -> None:
    pages = crawls.query("SELECT COUNT(*) FROM pages WHERE role = 'document'")
    assert pages == [(SIZE,)], "the sitemap index leads to every article"
    assert first.counts["fetched"] == SIZE
    empty = sum(1 for a in crawls.site.articles if not a.markdown.strip())
    stored = first.counts["new"] + first.counts["duplicate"]
    assert stored == SIZE - empty, "every article with a text is a document or a duplicate"
    assert first.counts["failed"] == empty, "pages with no text at all are reported"
    assert crawls.annotated[-1] == first.counts["new"]
    roles = dict(crawls.query("SELECT role, COUNT(*) FROM pages GROUP BY role"))
    assert roles["feed"] == 1 and roles["listing"] == 5
    assert roles["sitemap"] == 1 + len({a.published.year for a in crawls.site.articles})


def test_titles_dates_and_swedish_text_come_through(crawls: Crawls, first: RunSummary) -> None:
    newest = crawls.site.articles[-1]
    url = f"{crawls.server.origin}{newest.path}".rstrip("/")
    [(title, published, text)] = crawls.query(
        f"SELECT title, published, text FROM documents WHERE url = '{url}'"
    )
    assert title == newest.title
    assert published == newest.published.strftime("%Y-%m-%d")
    first_paragraph = newest.markdown.split("\n\n")[0].replace("**", "")
    assert first_paragraph[:60] in text
    assert "kakor" not in text and "Regeringskansliet, 103 33" not in text


def test_a_second_crawl_at_once_asks_only_feeds_sitemaps_and_listings(
    crawls: Crawls, first: RunSummary
) -> None:
    again = crawls.run()
    assert again.counts["fetched"] == 0 and again.counts["new"] == 0
    assert crawls.annotated[-1] == 0
    robots, not_modified = crawls.statuses[-1][200], crawls.statuses[-1][304]
    assert robots == 1, "only robots.txt is downloaded again (a new batch, a new fetcher)"
    assert not_modified == again.counts["not_modified"] >= 3
    assert crawls.document_requests() == Counter()


def test_after_the_interval_every_page_answers_304_and_nothing_is_extracted(
    crawls: Crawls, first: RunSummary, monkeypatch: pytest.MonkeyPatch
) -> None:
    extractions: list[object] = []
    real = batch_module.extract_page
    monkeypatch.setattr(
        batch_module, "extract_page", lambda *a, **k: extractions.append(a) or real(*a, **k)
    )
    with sqlite3.connect(crawls.db_path) as conn:
        conn.execute("UPDATE pages SET next_fetch = '2000-01-01T00:00:00Z'")
    again = crawls.run()
    assert crawls.document_requests() == Counter({304: SIZE})
    assert again.counts["not_modified"] >= SIZE and again.counts["fetched"] == 0
    assert extractions == [] and crawls.annotated[-1] == 0
    assert again.documents == first.documents


def test_after_changes_exactly_the_changed_and_added_pages_are_reprocessed(
    crawls: Crawls, first: RunSummary
) -> None:
    changed = crawls.site.change(5)
    added = crawls.site.add(3)
    assert len({a.path for a in changed}) == 5
    later = crawls.run()

    assert later.counts["fetched"] == 8
    assert later.counts["changed"] == 5 and later.counts["new"] == 3
    assert crawls.document_requests() == Counter({200: 8})
    assert crawls.annotated[-1] == 8
    expected = {f"{crawls.server.origin}{a.path}".rstrip("/") for a in changed + added}
    stored = crawls.query(
        "SELECT d.url FROM documents d JOIN document_versions v ON v.document_id = d.id"
        " JOIN fetches f ON f.id = v.fetch_id WHERE f.run_id = (SELECT MAX(id) FROM runs)"
    )
    assert {url for (url,) in stored} == expected
    versions = crawls.query(
        "SELECT COUNT(*) FROM document_versions v JOIN documents d ON d.id = v.document_id"
        " WHERE d.version = 2 AND v.version = 1"
    )
    assert versions == [(5,)], "the earlier text of each changed page is kept"


def test_changes_pick_other_pages_each_time_and_additions_lead_the_feed() -> None:
    site = PressSite(articles=load_articles(), limit=40, reserve=2)
    first, second = site.change(4), site.change(4)
    assert not {a.path for a in first} & {a.path for a in second}
    [fresh] = site.add(1)
    feed = site.render("/rss.xml", "http://127.0.0.1:1")
    assert feed is not None
    assert feed[0].index(fresh.path.encode()) < feed[0].index(site.articles[-2].path.encode())


def test_worker_processes_annotate_while_the_crawl_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With workers and the shipped models, annotation does not wait for the last page: chunks
    of stored documents go to the workers during the crawl, the rest after it, and every
    document ends up annotated exactly once with the current models."""
    site = PressSite(articles=load_articles(), limit=200, reserve=0)
    annotated_when_crawl_ended: list[int] = []
    annotate = Batch._annotate

    def record_then_annotate(self: Batch, db) -> None:  # type: ignore[no-untyped-def]
        annotated_when_crawl_ended.append(self.counts["annotated"])
        annotate(self, db)

    monkeypatch.setattr(Batch, "_annotate", record_then_annotate)
    with PressSiteServer(site) as server:
        sources = tmp_path / "sources.yaml"
        sources.write_text(server.sources_yaml(recrawl="6h"), encoding="utf-8")
        batch = Batch(
            load_sources(sources), db_path=tmp_path / "db", warc_dir=tmp_path / "w", workers=2
        )
        summary = batch.run()
    assert summary.status == "completed"
    with sqlite3.connect(tmp_path / "db") as conn:
        documents, pending, with_mentions = conn.execute(
            "SELECT COUNT(*), SUM(annotated_hash IS NOT content_hash),"
            " SUM(EXISTS (SELECT 1 FROM mentions m WHERE m.document_id = d.id))"
            " FROM documents d"
        ).fetchone()
    assert documents > 150
    assert pending == 0
    assert with_mentions > documents * 0.8
    assert batch.counts["annotated"] == documents
    assert annotated_when_crawl_ended[0] >= batch_module.ANNOTATE_CHUNK
