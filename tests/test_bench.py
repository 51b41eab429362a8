"""The ingest benchmark, run at a tiny size.

``make bench`` is the only place the full-scale numbers of the README come from, and it takes
minutes, so nothing else would notice if its harness broke (the site it serves, the batch in a
child process, the memory sampler, the bare work in two processes, the report). This runs the
whole harness over 40 and 80 real press releases and checks that the report is complete and
consistent. It asserts nothing about speed: that is what the benchmark itself is for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import REPO_ROOT
from pipeline.sitegen import CORPUS_DIR

pytestmark = pytest.mark.skipif(
    not CORPUS_DIR.is_dir(), reason=f"the press corpus is not there ({CORPUS_DIR})"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out: Path = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "bench.ingest", "--sizes", "40", "80", "--no-single"]
    subprocess.run([*command, "--output-dir", str(out)], cwd=REPO_ROOT, check=True, timeout=540)
    result = json.loads((out / "ingest.json").read_text(encoding="utf-8"))
    return result, (out / "ingest.md").read_text(encoding="utf-8")


def test_each_first_run_stores_and_annotates_what_it_finds_on_the_site(report) -> None:
    runs = report[0]["runs"]
    assert set(runs) == {"small", "all", "again"}
    for name in ("small", "all"):
        run = runs[name]
        assert run["documents"] > 0
        assert run["counts"]["new"] + run["counts"].get("failed", 0) <= run["documents_on_site"]
        assert run["counts"]["annotated"] == run["counts"]["new"]
        assert run["peak_pss_mb"] > 0 and run["peak_main_rss_mb"] > 0
    assert runs["all"]["documents"] > runs["small"]["documents"]


def test_the_second_run_finds_nothing_new(report) -> None:
    again = report[0]["runs"]["again"]
    assert "new" not in again["counts"] and "annotated" not in again["counts"]


def test_the_bare_work_covers_the_same_texts_and_every_kind_of_work(report) -> None:
    result = report[0]
    bare = result["bare_work"]
    assert bare["documents"] == result["runs"]["all"]["documents"]
    assert set(bare["cpu_seconds"]) == {"trafilatura", "ner", "themes", "extract_page", "link"}
    assert all(seconds > 0 for seconds in bare["cpu_seconds"].values())
    summary = result["summary"]
    assert summary["overhead_ratio"] > 0 and summary["cpu_ratio"] > 0


def test_the_cpu_taken_beside_the_batch_is_reported_apart(report) -> None:
    run = report[0]["runs"]["all"]
    assert 0 <= run["sampler_cpu_seconds"] <= run["site_cpu_seconds"]
    assert {"ner", "themes", "link", "load"} <= set(run["job_cpu_seconds"])
    table = report[1]
    assert "batch / bare work" in table and "memory sampling" in table
