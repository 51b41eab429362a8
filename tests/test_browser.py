"""The pages users come for, loaded in headless Chromium: what they see, not only status codes.

Debian's ``chromium`` (installed by ``.ci/run``) renders each page with its JavaScript —
Leaflet markers, the Vega chart — and writes the final DOM and a screenshot to
``tests/artifacts/``. Every host but 127.0.0.1 resolves to nothing, so the pages are checked
offline (map tiles stay grey). ``make screenshots`` copies the PNGs to ``docs/screenshots/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest
from test_serve import Datasette, documents_matching, query, sample_after_two_runs

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHART = "#g.mark=bar&g.x_column=month&g.x_type=ordinal&g.y_column=documents"

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
    ),
    pytest.mark.slow,  # two sample runs and six browser loads: over a minute
]


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    return sample_after_two_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def site(database) -> Iterator[Datasette]:
    server = Datasette("--db", str(database))
    yield server
    server.stop()


def render(url: str, name: str, tmp_path: Path, *, height: int = 1000) -> lxml.html.HtmlElement:
    """Load ``url`` headless, let its scripts run, save DOM and screenshot as ``name``."""
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--virtual-time-budget=10000",
        f"--window-size=1280,{height}",
        f"--screenshot={screenshot}",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    (ARTIFACTS / f"{name}.html").write_text(result.stdout, encoding="utf-8")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot of {url}"
    return lxml.html.fromstring(result.stdout)


def texts(page: lxml.html.HtmlElement, xpath: str) -> list[str]:
    return [element.text_content().strip() for element in page.xpath(xpath)]


def test_home_page_shows_counts_last_update_and_a_search_box(site, database, tmp_path):
    page = render(site.base + "/", "home", tmp_path, height=1250)
    documents = query(database, "SELECT COUNT(*) FROM documents")[0][0]
    finished = query(database, "SELECT MAX(finished) FROM runs WHERE status = 'completed'")[0][0]
    assert texts(page, "//*[@id='count-documents']/strong") == [str(documents)]
    assert texts(page, "//*[@id='last-updated']") == [finished[:16].replace("T", " ") + " UTC"]
    assert page.xpath("//form[@class='pipeline-search']//input[@type='search']")
    assert "Sök i texterna" in texts(page, "//ul[@class='pipeline-queries']/li/a")


def test_search_results_mark_the_words_found(site, database, tmp_path):
    page = render(site.base + "/pipeline/search?q=hemlös", "search", tmp_path)
    titles = texts(
        page, "//table[contains(@class, 'rows-and-columns')]//td[contains(@class, 'col-title')]"
    )
    expected = documents_matching(database, r"\bhemlös\w*")
    assert len(titles) == len(expected)
    marks = texts(page, "//td[contains(@class, 'col-snippet')]//mark")
    assert marks and all(mark.casefold().startswith("hemlös") for mark in marks)


def test_entity_page_lists_the_documents_that_name_it(site, database, tmp_path):
    entity_id, name, count = query(
        database,
        "SELECT id, name, document_count FROM entities WHERE label = 'ORG'"
        " ORDER BY document_count DESC, id LIMIT 1",
    )[0]
    page = render(f"{site.base}/pipeline/entities/{entity_id}", "entity", tmp_path)
    assert texts(page, "//h1") == [name]
    listed = texts(page, "//ul[@class='entity-documents']/li/a")
    titles = query(
        database,
        "SELECT DISTINCT d.title FROM mentions m JOIN documents d ON d.id = m.document_id"
        " WHERE m.entity_id = ?",
        (entity_id,),
    )
    assert len(listed) == count and set(listed) == {title for (title,) in titles}
    assert texts(page, "//ul[contains(@class, 'related-entities')]/li/a")


def test_map_shows_a_marker_for_every_place(site, database, tmp_path):
    page = render(site.base + "/pipeline/places", "map", tmp_path, height=900)
    places = query(database, "SELECT COUNT(*) FROM places")[0][0]
    assert places > 0
    assert page.xpath("//*[@id='pipeline-map']//div[contains(@class, 'leaflet-container')]")
    markers = page.xpath(
        "//div[contains(@class, 'leaflet-marker-pane')]/*[contains(@class, 'leaflet-marker-icon')]"
    )
    shown = 0
    for marker in markers:
        if "marker-cluster" in marker.get("class"):
            shown += int(marker.text_content())
        else:
            shown += 1
    assert shown == places


def test_chart_of_themes_per_month_is_drawn(site, tmp_path):
    page = render(site.base + "/pipeline/themes_per_month" + CHART, "chart", tmp_path, height=1050)
    canvases = page.xpath("//div[contains(@class, 'vega-embed')]//canvas")
    assert canvases, "the chart was not drawn"
    assert int(canvases[0].get("width")) > 300 and int(canvases[0].get("height")) > 100
    assert page.xpath("//select[@name='x_column']/option[text()='month']")
    assert page.xpath("//p[@class='chart-link']/a[starts-with(@href, '#g.mark=')]")


def test_document_page_reads_as_text_with_names_and_themes(site, database, tmp_path):
    document_id, title, text = query(
        database,
        "SELECT d.id, d.title, d.text FROM documents d"
        " WHERE (SELECT COUNT(*) FROM mentions m WHERE m.document_id = d.id) > 3"
        " AND EXISTS (SELECT 1 FROM document_themes t WHERE t.document_id = d.id)"
        " ORDER BY d.published DESC LIMIT 1",
    )[0]
    page = render(f"{site.base}/pipeline/documents/{document_id}", "document", tmp_path)
    assert texts(page, "//h1") == [title]
    paragraphs = texts(page, "//div[@class='document-text']/p")
    assert paragraphs == [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    assert page.xpath("//div[@class='document-text']//a[contains(@class, 'mention')]")
    scores = texts(page, "//div[@class='theme-score']/span[@class='score']")
    assert scores and all(0 <= float(score) <= 1 for score in scores)
