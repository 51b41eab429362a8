"""The ``pipeline`` command as a user runs it: real processes, real files, Datasette over HTTP."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipeline.config import SAMPLE_SOURCES
from pipeline.nlp.taxonomy import load_themes

PIPELINE = [sys.executable, "-m", "pipeline"]
SAMPLE = SAMPLE_SOURCES.parent / "sites"
RELEASE = next((SAMPLE / "pressrum.example" / "pressmeddelanden").glob("tjugo-lagenheter*.html"))


def pipeline(
    *args: str, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PIPELINE, *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("cli")
    db = work / "pipeline.db"
    result = pipeline("run", "--sample", "--db", str(db), "--warc-dir", str(work / "warc"))
    assert result.returncode == 0, result.stderr
    assert "Documents in" in result.stdout
    assert f"pipeline serve --db {db}" in result.stdout
    return db


def test_sources_check_accepts_the_sample_and_explains_a_mistake(tmp_path):
    ok = pipeline("sources", "check", str(SAMPLE_SOURCES))
    assert ok.returncode == 0
    assert "3 sources, all valid" in ok.stdout
    broken = tmp_path / "sources.yaml"
    broken.write_text(SAMPLE_SOURCES.read_text().replace("kind: news", "kind: nyheter"))
    failed = pipeline("sources", "check", str(broken))
    assert failed.returncode == 1
    assert f"{broken}:" in failed.stderr
    assert "source 'kommun'" in failed.stderr and "kind" in failed.stderr


def test_extract_prints_title_date_author_and_text_as_json():
    result = pipeline("extract", str(RELEASE), "--url", "http://pressrum.example/x.html")
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    assert page["title"] == "Tjugo lägenheter till Bostad först i Malmö"
    assert page["published"] == "2020-05-20T06:00"
    assert {"title", "published", "author", "text"} <= set(page)
    assert "Bostad först" in page["text"]
    assert "kakor" not in page["text"].lower()


def test_annotate_text_gives_one_line_per_input_with_offsets_into_the_text():
    texts = [
        {"id": "a", "text": "Hyresgästföreningen och Malmö stad startar ett projekt i Rosengård."},
        {"id": 2, "text": "Karin Holm på Länsstyrelsen Skåne leder arbetet mot hemlöshet."},
        {"id": "tom", "text": ""},
    ]
    stdin = "\n".join(json.dumps(t, ensure_ascii=False) for t in texts) + "\n"
    result = pipeline("annotate-text", "-", stdin=stdin)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["a", 2, "tom"]
    slugs = {theme.slug for theme in load_themes()}
    for given, line in zip(texts, lines, strict=True):
        for entity in line["entities"]:
            assert entity["label"] in {"PER", "ORG", "LOC"}
            assert given["text"][entity["start"] : entity["end"]] == entity["text"]
        for theme in line["themes"]:
            assert theme["theme"] in slugs
            assert 0.0 <= theme["score"] <= 1.0
    assert lines[0]["entities"], "no entity found in a sentence full of them"
    assert lines[2] == {"id": "tom", "entities": [], "themes": []}


def test_annotate_text_rejects_a_line_that_is_not_json():
    result = pipeline("annotate-text", "-", stdin='{"id": 1, "text": "Hej"}\nnot json\n')
    assert result.returncode == 1
    assert "line 2" in result.stderr


def test_runs_lists_the_batch(sample_db):
    result = pipeline("runs", "--db", str(sample_db))
    assert result.returncode == 0
    assert "completed" in result.stdout


def test_serve_opens_datasette_with_the_projects_metadata(sample_db):
    port = free_port()
    server = subprocess.Popen(
        [*PIPELINE, "serve", "--db", str(sample_db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                home = httpx.get(base + "/", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, "Datasette did not start within 60 s"
                time.sleep(0.3)
        assert "Bostad, segregation och integration" in home.text
        documents = httpx.get(
            base + "/pipeline/documents.json",
            params={"_shape": "objects", "_facet": "source_id", "_size": "100"},
        ).json()
        assert len(documents["rows"]) >= 30
        facet = {v["value"] for v in documents["facet_results"]["source_id"]["results"]}
        assert facet == {"pressrum", "bloggen", "kommun"}
        dates = [row["published"] for row in documents["rows"]]
        assert dates == sorted(dates, reverse=True), "documents are sorted newest first"
        search = httpx.get(
            base + "/pipeline/documents.json", params={"_search": "hemlöshet", "_shape": "objects"}
        ).json()
        assert search["rows"], "full-text search finds Swedish words"
        tables = httpx.get(base + "/pipeline.json").json()["tables"]
        described = {t["name"] for t in tables}
        assert {"documents", "entities", "mentions", "document_themes", "runs"} <= described
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_readme_lists_every_command_and_no_other() -> None:
    """The command table in the README is the user's index of the CLI; it must not drift."""
    import click

    from pipeline.cli import cli
    from pipeline.config import REPO_ROOT

    def names(group: click.Group, prefix: str = "") -> set[str]:
        found = set()
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found |= names(command, f"{prefix}{name} ")
            else:
                found.add(prefix + name)
        return found

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## The command line", 1)[1].split("\n\n`annotate-text`", 1)[0]
    # "pipeline sources check [FILE]" names "sources check"; options and arguments follow
    listed = set(re.findall(r"`pipeline ([a-z][a-z-]*(?: [a-z][a-z-]*)*)", table))
    assert listed == names(cli)
