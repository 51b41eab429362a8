"""Exploring in Datasette: `pipeline serve`, `publish` and `export` as the users meet them.

The sample is crawled with `pipeline run --sample`, then crawled again a "day later" after the
blog rewrote one post and published a new one, so that the database has two runs, a changed
document and a new one. Datasette runs as a real process on a free port of 127.0.0.1, once in
the analyst's local mode and once in public mode, and is checked over HTTP; the expected
answers are computed from the SQLite file directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import IO

import httpx
import lxml.html
import pytest

from pipeline.batch import Batch
from pipeline.config import SAMPLE_SOURCES, load_sources
from pipeline.nlp.ner import DEFAULT_NER_MODEL
from pipeline.nlp.themes import DEFAULT_THEME_MODEL
from pipeline.sample import SampleServer
from pipeline.serve.datasette import prepare_database
from pipeline.store.db import open_db

PIPELINE = [sys.executable, "-m", "pipeline"]
SITES = SAMPLE_SOURCES.parent / "sites"
BLOG = "http://bloggen.example"
CHANGED_PATH = "/2020/11/trygghet-byggs-inte-bara-med-kameror/"
NEW_PATH = "/2021/04/nattvandrarna-i-vivalla-far-fortsatt-stod/"
CHANGED_URL = BLOG + CHANGED_PATH.rstrip("/")  # canonical URLs have no trailing slash
NEW_URL = BLOG + NEW_PATH.rstrip("/")
OLD_SENTENCE = "Trygghetsarbetet måste bygga på deras kunskap, inte på rubrikerna."
NEW_SENTENCE = "Trygghetsarbetet måste bygga på de boendes egen kunskap, inte på rubrikerna."
ADDED_PARAGRAPH = (
    "Uppdatering i december: Örebro kommun har beslutat att nattvandringarna i Vivalla får "
    "stöd även nästa år."
)
NEW_POST = [
    "Örebro kommun och Svartåhem har kommit överens om att nattvandringarna i Vivalla ska "
    "fortsätta under hela året. Föreningen som samordnar vandringarna får ett bidrag för tre år "
    "i stället för ett nytt beslut varje halvår.",
    "– Nu kan vi planera längre än till nästa termin, rekrytera fler vuxna och utbilda dem "
    "ordentligt, säger Amina Yusuf, ordförande i föreningen Vuxna i Vivalla.",
    "Polisen i Örebro beskriver nattvandrarna som ett viktigt komplement. Sedan vandringarna "
    "började har anmälningarna om skadegörelse på gårdarna minskat, men det är för tidigt att "
    "säga vad som beror på vad.",
    "Vi återkommer med resultaten från vårens trygghetsvandring, som Hyresgästföreningen och "
    "Svartåhem gör tillsammans med de boende.",
]
CANNED_QUERIES = {
    "search": {"q": "hemlös"},
    "documents_mentioning": {"organisation": "hyresgästföreningen"},
    "mentioned_together": {"organisation": "hyresgästföreningen"},
    "themes_per_month": {"theme": ""},
    "top_people": {},
    "new_since_last_run": {"run": ""},
    "document_changes": {"document": CHANGED_URL},
}


# --------------------------------------------------------------------------- fixtures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pipeline(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PIPELINE, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def copy_db(source: Path, target: Path) -> Path:
    """A consistent copy of a (WAL-mode) database file through SQLite's backup API."""
    with sqlite3.connect(source) as reader, sqlite3.connect(target) as writer:
        reader.backup(writer)
    return target


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def the_blog_a_day_later(sites: Path) -> None:
    """One post gets a reworded sentence and an update paragraph; a new post is published."""
    blog = sites / "bloggen.example"
    changed = blog / CHANGED_PATH.strip("/") / "index.html"
    html = changed.read_text(encoding="utf-8")
    assert OLD_SENTENCE in html
    html = html.replace(OLD_SENTENCE, NEW_SENTENCE + "</p>\n<p>" + ADDED_PARAGRAPH)
    changed.write_text(html, encoding="utf-8")
    new = blog / NEW_PATH.strip("/") / "index.html"
    new.parent.mkdir(parents=True)
    body = "".join(f"<p>{paragraph}</p>\n" for paragraph in NEW_POST)
    page = re.sub(
        r'(<div class="entry-content">).*?(</div>)',
        lambda m: m.group(1) + body + m.group(2),
        html,
        count=1,
        flags=re.S,
    )
    for old, fresh in [
        ("Trygghet byggs inte bara med kameror", "Nattvandrarna i Vivalla får fortsatt stöd"),
        ("2020-11-12T11:00:00+01:00", "2021-04-08T09:00:00+02:00"),
        ("12 november 2020", "8 april 2021"),
        (CHANGED_PATH, NEW_PATH),
    ]:
        page = page.replace(old, fresh)
    new.write_text(page, encoding="utf-8")
    sitemap = blog / "sitemap.xml"
    xml = sitemap.read_text(encoding="utf-8")
    xml = xml.replace(
        f"<loc>{BLOG}{CHANGED_PATH}</loc>\n    <lastmod>2020-11-12T11:00:00+01:00</lastmod>",
        f"<loc>{BLOG}{CHANGED_PATH}</loc>\n    <lastmod>2020-12-15T10:00:00+01:00</lastmod>",
    )
    entry = f"<url>\n    <loc>{BLOG}{NEW_PATH}</loc>\n    <lastmod>2021-04-08T09:00:00+02:00"
    xml = xml.replace("</urlset>", f"  {entry}</lastmod>\n  </url>\n</urlset>")
    assert "2020-12-15" in xml and NEW_PATH in xml
    sitemap.write_text(xml, encoding="utf-8")


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    return sample_after_two_runs(tmp_path_factory)


def sample_after_two_runs(tmp_path_factory) -> Path:
    """The sample after two runs: everything new in run 1; one changed, one new in run 2."""
    if not (DEFAULT_NER_MODEL / "config.cfg").is_file() or not DEFAULT_THEME_MODEL.exists():
        pytest.skip("the NER and theme models are not trained yet (models/ner, models/themes)")
    work = tmp_path_factory.mktemp("serve")
    db = work / "pipeline.db"
    first = pipeline("run", "--sample", "--db", str(db), "--warc-dir", str(work / "warc"))
    assert first.returncode == 0, first.stderr
    sites = work / "sites"
    shutil.copytree(SITES, sites)
    the_blog_a_day_later(sites)
    with SampleServer(sites) as server:
        batch = Batch(
            load_sources(SAMPLE_SOURCES),
            db_path=db,
            warc_dir=work / "warc",
            transport=server.transport(),
        )
        summary = batch.run(["bloggen"])
    assert (summary.counts["new"], summary.counts["changed"]) == (1, 1)
    return db


class Datasette:
    """`pipeline serve` as a child process, stopped at the end of the module."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server. Closed in stop().
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            [*PIPELINE, "serve", *args, "--port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.client = httpx.Client(base_url=self.base, timeout=30)
        wait_until_up(self.client, self.process, self.log)

    def json(self, path: str, **params: str) -> dict:
        response = self.client.get(path, params={"_shape": "objects", **params})
        assert response.status_code == 200, response.text[:500]
        return response.json()

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


def wait_until_up(
    client: httpx.Client, process: subprocess.Popen, log: IO[bytes], seconds: float = 60
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.get("/-/versions.json")
            return
        except httpx.TransportError:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"the server stopped: {log.read().decode(errors='replace')}")
            assert time.monotonic() < deadline, f"Datasette did not start within {seconds} s"
            time.sleep(0.3)


@pytest.fixture(scope="module")
def local(database) -> Iterator[Datasette]:
    server = Datasette("--db", str(database))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def public(database, tmp_path_factory) -> Iterator[Datasette]:
    """Public mode, on a copy whose file name is not "pipeline": it is still served as such."""
    copy = copy_db(database, tmp_path_factory.mktemp("public") / "bevakning.db")
    server = Datasette("--db", str(copy), "--public")
    yield server
    server.stop()


# --------------------------------------------------------------------------- home and metadata


def test_home_page_says_what_the_database_holds_and_when_it_was_last_updated(local, database):
    page = lxml.html.fromstring(local.client.get("/").text)
    documents = query(database, "SELECT COUNT(*) FROM documents")[0][0]
    finished = query(database, "SELECT MAX(finished) FROM runs WHERE status = 'completed'")[0][0]
    assert page.findtext(".//h1").startswith("Bostad, segregation och integration")
    assert page.get_element_by_id("count-documents").findtext("strong") == str(documents)
    updated = page.get_element_by_id("last-updated").text_content()
    assert updated == finished[:16].replace("T", " ") + " UTC"
    for label, count in query(
        database, "SELECT label, COUNT(*) FROM entities WHERE document_count > 0 GROUP BY label"
    ):
        assert page.get_element_by_id(f"count-{label}").findtext("strong") == str(count)
    linked = {a.get("href") for a in page.iter("a")}
    assert {f"/pipeline/{name}" for name in CANNED_QUERIES if name != "themes_per_month"} <= linked
    assert any(href.startswith("/pipeline/themes_per_month#g.mark=") for href in linked)
    assert page.xpath("//form[@action='/pipeline/search']//input[@name='q']")


def test_every_table_and_view_has_a_title_a_description_and_column_descriptions(local):
    described = local.json("/-/metadata.json")["databases"]["pipeline"]["tables"]
    database = local.json("/pipeline.json")
    visible = {t["name"]: t["columns"] for t in database["tables"] if not t["hidden"]}
    for view in database["views"]:
        visible[view["name"]] = local.json(f"/pipeline/{view['name']}.json", _size="1")["columns"]
    assert {"documents", "document_overview", "places", "person_roles"} <= set(visible)
    for name, columns in visible.items():
        meta = described.get(name, {})
        assert meta.get("title") and meta.get("description"), f"{name} has no title/description"
        missing = set(columns) - set(meta.get("columns", {}))
        assert not missing, f"{name}: columns without a description: {sorted(missing)}"


# --------------------------------------------------------------------------- tables and facets


def test_documents_are_newest_first_with_source_and_kind_facets(local, database):
    page = local.json("/pipeline/documents.json", _size="max")
    dates = [row["published"] for row in page["rows"] if row["published"]]
    assert len(page["rows"]) == query(database, "SELECT COUNT(*) FROM documents")[0][0]
    assert dates == sorted(dates, reverse=True)
    facets = page["facet_results"]
    expected = dict(query(database, "SELECT source_id, COUNT(*) FROM documents GROUP BY 1"))
    assert {f["value"]: f["count"] for f in facets["source_id"]["results"]} == expected
    kinds = dict(query(database, "SELECT kind, COUNT(*) FROM documents GROUP BY 1"))
    assert {f["value"]: f["count"] for f in facets["kind"]["results"]} == kinds


def test_overview_facets_documents_by_year_theme_and_organisation(local, database):
    page = local.json("/pipeline/document_overview.json", _size="max")
    facets = {
        name: {f["value"]: f["count"] for f in result["results"]}
        for name, result in page["facet_results"].items()
    }
    assert {"source_id", "kind", "year", "themes", "organisations"} <= set(facets)
    years = Counter(p[:4] for (p,) in query(database, "SELECT published FROM documents") if p)
    assert facets["year"] == dict(years)
    themes = dict(query(database, "SELECT theme, COUNT(*) FROM document_themes GROUP BY 1"))
    assert facets["themes"] == themes
    organisations = dict(
        query(
            database,
            "SELECT e.name, COUNT(DISTINCT m.document_id) FROM mentions m"
            " JOIN entities e ON e.id = m.entity_id WHERE e.label = 'ORG' GROUP BY e.id",
        )
    )
    top = sorted(organisations.items(), key=lambda item: -item[1])[0]
    assert facets["organisations"][top[0]] == top[1]
    dates = [row["published"] for row in page["rows"] if row["published"]]
    assert dates == sorted(dates, reverse=True)
    chosen_year = max(years)
    filtered = local.json("/pipeline/document_overview.json", year=chosen_year)
    assert {row["year"] for row in filtered["rows"]} == {chosen_year}
    assert len(filtered["rows"]) == years[chosen_year]


def test_entities_facet_by_label_and_theme_assignments_by_theme(local, database):
    entities = local.json("/pipeline/entities.json")["facet_results"]["label"]["results"]
    assert {f["value"]: f["count"] for f in entities} == dict(
        query(database, "SELECT label, COUNT(*) FROM entities GROUP BY label")
    )
    themes = local.json("/pipeline/document_themes.json")["facet_results"]["theme"]["results"]
    assert {f["value"]: f["count"] for f in themes} == dict(
        query(database, "SELECT theme, COUNT(*) FROM document_themes GROUP BY theme")
    )


def documents_matching(database: Path, regex: str) -> set[int]:
    """Ids of the documents whose title or text matches ``regex`` (case ignored)."""
    pattern = re.compile(regex, re.I)
    return {
        i
        for i, title, text in query(database, "SELECT id, title, text FROM documents")
        if pattern.search(f"{title}\n{text}")
    }


def test_table_search_keeps_swedish_letters_apart(local, database):
    def containing(word: str) -> set[int]:
        return documents_matching(database, rf"\b{word}\b")

    found = local.json("/pipeline/documents.json", _search="hemlöshet", _size="max")["rows"]
    assert {row["id"] for row in found} == containing("hemlöshet") != set()
    via_view = local.json("/pipeline/document_overview.json", _search="hemlöshet", _size="max")
    assert {row["id"] for row in via_view["rows"]} == containing("hemlöshet")
    far = local.json("/pipeline/documents.json", _search="far", _size="max")["rows"]
    assert {row["id"] for row in far} == containing("far")
    assert containing("får") - containing("far"), "the sample has får without far"


# --------------------------------------------------------------------------- canned queries


def test_search_finds_longer_forms_and_marks_them_in_a_snippet(local, database):
    rows = local.json("/pipeline/search.json", q="hemlös")["rows"]
    expected = documents_matching(database, r"\bhemlös\w*")
    assert {row["id"] for row in rows} == expected
    assert expected - documents_matching(database, r"\bhemlös\b"), "found only as a prefix"
    forms = {
        m.casefold() for row in rows for m in re.findall(r"<mark>(.*?)</mark>", row["snippet"])
    }
    assert forms and all(form.startswith("hemlös") for form in forms)
    html = lxml.html.fromstring(local.client.get("/pipeline/search", params={"q": "hemlös"}).text)
    assert len(html.xpath("//td[contains(@class, 'col-snippet')]//mark")) >= len(rows)
    phrase = local.json("/pipeline/search.json", q='"bostad först"')["rows"]
    assert phrase and all(
        "bostad först" in re.sub(r"</?mark>", "", row["snippet"]).casefold() for row in phrase
    )
    assert local.json("/pipeline/search.json", q="")["rows"] == []


def documents_naming(database: Path, part: str, label: str = "ORG") -> dict[int, str]:
    return {
        document_id: name
        for document_id, name in query(
            database,
            "SELECT DISTINCT m.document_id, e.name FROM mentions m"
            " JOIN entities e ON e.id = m.entity_id WHERE e.label = ?",
            (label,),
        )
        if part.casefold() in name.casefold()
    }


def test_documents_mentioning_an_organisation_whatever_the_case(local, database):
    rows = local.json("/pipeline/documents_mentioning.json", organisation="HYRESGÄSTFÖRENINGEN")
    expected = documents_naming(database, "hyresgästföreningen")
    assert expected, "the sample names Hyresgästföreningen"
    assert {row["id"] for row in rows["rows"]} == set(expected)
    dates = [row["published"] for row in rows["rows"]]
    assert dates == sorted(dates, reverse=True)
    assert all("hyresgästföreningen" in row["organisations"].casefold() for row in rows["rows"])
    empty = local.json("/pipeline/documents_mentioning.json", organisation="")
    assert empty["rows"] == []


def test_organisations_mentioned_together_with_one(local, database):
    rows = local.json("/pipeline/mentioned_together.json", organisation="Hyresgästföreningen")
    target = set(documents_naming(database, "hyresgästföreningen"))
    together = Counter()
    for document_id, name in query(
        database,
        "SELECT DISTINCT m.document_id, e.name FROM mentions m"
        " JOIN entities e ON e.id = m.entity_id WHERE e.label = 'ORG'",
    ):
        if document_id in target and "hyresgästföreningen" not in name.casefold():
            together[name] += 1
    assert {row["organisation"]: row["documents"] for row in rows["rows"]} == dict(together)
    counts = [row["documents"] for row in rows["rows"]]
    assert counts == sorted(counts, reverse=True)
    first = rows["rows"][0]
    assert first["percent_of_documents"] == round(100 * first["documents"] / len(target), 1)


def test_themes_per_month_adds_up_and_filters_by_theme(local, database):
    rows = local.json("/pipeline/themes_per_month.json", _size="max")["rows"]
    expected = Counter(
        (published[:7], theme)
        for published, theme in query(
            database,
            "SELECT d.published, t.theme FROM document_themes t"
            " JOIN documents d ON d.id = t.document_id WHERE d.published IS NOT NULL",
        )
    )
    assert {(row["month"], row["theme"]): row["documents"] for row in rows} == dict(expected)
    assert [row["month"] for row in rows] == sorted(row["month"] for row in rows)
    theme = expected.most_common(1)[0][0][1]
    only = local.json("/pipeline/themes_per_month.json", theme=theme)["rows"]
    assert only and {row["theme"] for row in only} == {theme}


def test_top_people_are_the_most_mentioned_with_their_organisations(local, database):
    rows = local.json("/pipeline/top_people.json")["rows"]
    people = query(
        database,
        "SELECT name, document_count FROM entities WHERE label = 'PER' AND document_count > 0"
        " ORDER BY document_count DESC, mention_count DESC, name LIMIT 50",
    )
    assert [(row["person"], row["documents"]) for row in rows] == people
    given: dict[str, dict[str, set[str]]] = {}
    for person, role, affiliation in query(
        database, "SELECT person, role, affiliation FROM person_roles"
    ):
        entry = given.setdefault(person, {"roles": set(), "affiliations": set()})
        entry["roles"].add(role)
        entry["affiliations"].add(affiliation)
    for row in rows:
        for column in ("roles", "affiliations"):
            listed = set(row[column].split("; ")) if row[column] else set()
            assert listed <= given.get(row["person"], {}).get(column, set())
    assert any(row["affiliations"] for row in rows), "the sample ties people to organisations"
    assert any(row["roles"] for row in rows), "the sample gives people roles"


def test_new_since_last_run_is_what_the_second_run_stored(local, database):
    rows = local.json("/pipeline/new_since_last_run.json")["rows"]
    assert {(row["change"], row["title"]) for row in rows} == {
        ("new", "Nattvandrarna i Vivalla får fortsatt stöd"),
        ("changed", "Trygghet byggs inte bara med kameror"),
    }
    everything = local.json("/pipeline/new_since_last_run.json", run="1", _size="max")["rows"]
    assert len(everything) == query(database, "SELECT COUNT(*) FROM documents")[0][0]


def test_document_changes_show_the_paragraphs_removed_and_added(local, database):
    (document_id,) = query(database, "SELECT id FROM documents WHERE url = ?", (CHANGED_URL,))[0]
    rows = local.json("/pipeline/document_changes.json", document=str(document_id))["rows"]
    assert [row["version"] for row in rows] == [2, 1]
    latest, first = rows
    assert first["changes"] is None
    removed = [line[2:] for line in latest["changes"].splitlines() if line.startswith("- ")]
    added = [line[2:] for line in latest["changes"].splitlines() if line.startswith("+ ")]
    assert len(removed) == 1 and OLD_SENTENCE in removed[0]
    assert any(NEW_SENTENCE in paragraph for paragraph in added)
    assert ADDED_PARAGRAPH in added
    by_url = local.json("/pipeline/document_changes.json", document=CHANGED_URL)["rows"]
    assert by_url == rows
    html = lxml.html.fromstring(
        local.client.get("/pipeline/document_changes", params={"document": document_id}).text
    )
    assert ADDED_PARAGRAPH in " ".join(html.xpath("//div[@class='diff-added']/ins/text()"))


def test_places_have_coordinates_for_the_map(local, database):
    rows = local.json("/pipeline/places.json", _size="max")["rows"]
    assert rows
    for row in rows:
        assert -90 <= row["latitude"] <= 90 and -180 <= row["longitude"] <= 180
        assert json.loads(row["popup"])["link"] == f"entities/{row['id']}"
    labels = query(database, "SELECT DISTINCT e.label FROM entities e JOIN places p ON p.id = e.id")
    assert labels == [("LOC",)]


# --------------------------------------------------------------------------- pages


def test_document_page_shows_paragraphs_names_and_themes(local, database):
    (document_id, text) = query(
        database, "SELECT id, text FROM documents WHERE url = ?", (NEW_URL,)
    )[0]
    page = lxml.html.fromstring(local.client.get(f"/pipeline/documents/{document_id}").text)
    assert page.findtext(".//h1") == "Nattvandrarna i Vivalla får fortsatt stöd"
    paragraphs = [p.text_content() for p in page.find_class("document-text")[0].iter("p")]
    assert paragraphs == [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    marked = {a.text_content() for a in page.find_class("mention")}
    mentioned = query(
        database, "SELECT DISTINCT text FROM mentions WHERE document_id = ?", (document_id,)
    )
    assert marked == {text for (text,) in mentioned} != set()
    listed = {a.text_content() for ul in page.find_class("entity-list") for a in ul.iter("a")}
    names = query(
        database,
        "SELECT DISTINCT e.name FROM mentions m JOIN entities e ON e.id = m.entity_id"
        " WHERE m.document_id = ?",
        (document_id,),
    )
    assert {name for (name,) in names} <= listed
    shown = {
        div.get("data-theme"): div.find_class("score")[0].text
        for div in page.find_class("theme-score")
    }
    themes = query(
        database, "SELECT theme, score FROM document_themes WHERE document_id = ?", (document_id,)
    )
    assert shown == {theme: f"{score:.2f}" for theme, score in themes}


# --------------------------------------------------------------------------- the two modes


def test_local_mode_lets_the_analyst_run_sql(local, database):
    result = local.json("/pipeline.json", sql="select count(*) as n from documents")
    assert result["rows"] == [{"n": query(database, "SELECT COUNT(*) FROM documents")[0][0]}]
    assert local.json("/-/settings.json", _shape="array")["sql_time_limit_ms"] == 5000


def test_public_mode_is_read_only_and_offers_only_canned_queries(public, database):
    client = public.client
    refused = client.get("/pipeline.json", params={"sql": "select 1"})
    assert refused.status_code == 403
    assert client.get("/pipeline", params={"sql": "select 1"}).status_code == 403
    where = client.get("/pipeline/documents.json", params={"_where": "1=1"})
    assert where.status_code == 403
    assert "<textarea" not in client.get("/pipeline").text
    assert client.get("/pipeline.db").status_code == 403
    settings = client.get("/-/settings.json").json()
    assert settings["default_allow_sql"] is False
    assert settings["sql_time_limit_ms"] == 2000
    databases = client.get("/-/databases.json").json()
    assert [(d["name"], d["is_mutable"]) for d in databases] == [("pipeline", False)]
    robots = client.get("/robots.txt")
    assert robots.status_code == 200 and "Disallow: /" in robots.text.splitlines()
    documents = public.json("/pipeline/documents.json")
    assert documents["rows"] and "source_id" in documents["facet_results"]
    assert public.json("/pipeline/documents.json", _search="hemlöshet")["rows"]
    for name, params in CANNED_QUERIES.items():
        rows = public.json(f"/pipeline/{name}.json", **params)["rows"]
        assert rows, f"canned query {name} returned nothing in public mode"
    csv = client.get("/pipeline/documents.csv", params={"_size": "5"})
    assert csv.status_code == 200 and csv.text.startswith("id,url,source_id")


def test_serving_brings_an_older_database_views_up_to_date(tmp_path):
    db = tmp_path / "gammal.db"
    open_db(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP VIEW places")
        conn.execute("CREATE VIEW places AS SELECT id, name FROM entities")
        conn.execute("DROP VIEW document_overview")
    prepare_database(db)
    with sqlite3.connect(db) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(places)")]
        overview = conn.execute("SELECT COUNT(*) FROM document_overview").fetchone()
    assert {"latitude", "longitude", "popup"} <= set(columns)
    assert overview == (0,)


# --------------------------------------------------------------------------- publish and export


def test_publish_writes_a_directory_that_serves_the_public_mode(database, tmp_path):
    out = tmp_path / "site"
    result = pipeline("publish", str(out), "--db", str(database))
    assert result.returncode == 0, result.stderr
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"pipeline.db", "metadata.yml", "requirements.txt", "run.sh", "Procfile"} <= names
    assert "plugins/pipeline_pages.py" in names and "templates/index.html" in names
    assert not any("__pycache__" in name for name in names)
    pins = (out / "requirements.txt").read_text().split()
    for package in (
        "datasette",
        "datasette-cluster-map",
        "datasette-vega",
        "datasette-block-robots",
    ):
        assert f"{package}=={version(package)}" in pins
    assert query(out / "pipeline.db", "PRAGMA journal_mode") == [("delete",)]
    assert query(out / "pipeline.db", "SELECT COUNT(*) FROM documents") == query(
        database, "SELECT COUNT(*) FROM documents"
    )
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    with (
        tempfile.TemporaryFile() as log,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        command = ["sh", str(out / "run.sh")]
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            wait_until_up(client, server, log)
            assert client.get("/pipeline.json", params={"sql": "select 1"}).status_code == 403
            search = client.get("/pipeline/search.json", params={"q": "hemlös"})
            assert search.status_code == 200 and search.json()["rows"]
            assert "Senast uppdaterad" in client.get("/").text
        finally:
            server.terminate()
            server.wait(timeout=10)
    again = pipeline("publish", str(out), "--db", str(database))
    assert again.returncode == 0, "an earlier publish is overwritten"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mina anteckningar")
    refused = pipeline("publish", str(tmp_path / "notes"), "--db", str(database))
    assert refused.returncode != 0 and "not empty" in refused.stderr
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mina anteckningar"


def test_export_writes_each_document_as_a_json_line(database, tmp_path):
    target = tmp_path / "documents.jsonl"
    result = pipeline("export", "--db", str(database), "--output", str(target))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == query(database, "SELECT COUNT(*) FROM documents")[0][0]
    assert f"{len(lines)} documents exported" in result.stderr
    fields = ["id", "url", "source", "kind", "title", "published", "author", "text"]
    assert list(lines[0]) == [*fields, "entities", "themes"]
    for line in lines:
        for entity in line["entities"]:
            assert line["text"][entity["start"] : entity["end"]] == entity["text"]
            assert entity["label"] in {"PER", "ORG", "LOC"}
    mentions = query(database, "SELECT COUNT(*) FROM mentions")[0][0]
    assert sum(len(line["entities"]) for line in lines) == mentions
    by_id = {line["id"]: line for line in lines}
    for document_id, theme, score in query(
        database, "SELECT document_id, theme, score FROM document_themes"
    ):
        assert {"theme": theme, "score": score} in by_id[document_id]["themes"]
    stdout = pipeline("export", "--db", str(database))
    assert [json.loads(line) for line in stdout.stdout.splitlines()] == lines
