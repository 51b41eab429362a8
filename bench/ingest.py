"""Ingestion benchmark: the whole regeringen corpus crawled, extracted, annotated and stored.

The ~8,500 government press releases of ``../shared/data/press/regeringen`` are served as a
local website (:mod:`pipeline.sitegen`: pages, listings, RSS, sitemaps) and ingested end to end
by a batch in its own process, exactly as ``pipeline run`` does it. Measured:

1. **Throughput and where the time goes**: documents per second of the first run over the whole
   corpus, and the busy seconds of each stage summed over the batch's processes.
2. **Overhead over the bare work**: the same models on the same inputs with nothing around them
   (``trafilatura.extract`` on the stored HTML, ``nlp.pipe`` on the stored texts, the theme
   classifier on them), in as many processes as the batch uses, timed in the same session.
3. **Memory as the corpus grows**: the peak memory of a first run over the newest 1,000
   documents and over all of them (process tree of the batch: RSS and PSS summed).
4. **A second run with nothing changed**, against the first run's time.

Each batch runs in a fresh process so that its peak memory is its own; this process serves the
site and samples the memory of the batch's process tree. Run with ``make bench`` or
``python -m bench --only ingest`` (``--sizes 200 600`` for a quick look); results are written to
``bench/results/ingest.md`` and ``ingest.json``. Needs the corpus and the models.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import REPO_ROOT
from pipeline.sitegen import CORPUS_DIR, Article, PressSite, PressSiteServer, load_articles

RESULTS_DIR = REPO_ROOT / "bench" / "results"
SAMPLE_EVERY = 0.25  # seconds between two memory samples of the batch's processes

STAGES = {
    "discover": "discovery (feeds, sitemaps, listings)",
    "fetch": "fetching and archiving (WARC)",
    "extract": "extraction",
    "store": "storing documents",
    "load": "loading the models",
    "ner": "NER (`nlp.pipe`)",
    "themes": "theme classifier",
    "link": "entity linking",
    "save": "storing annotations",
    "entities": "entity counts and links",
    "wait": "main process waiting for workers",
}
PHASES = ("discover", "crawl", "annotate")


# --------------------------------------------------------------------------- one batch


@dataclass
class BatchRun:
    """One batch process: its times, counters and peak memory."""

    name: str
    documents_on_site: int
    process_seconds: float  # from starting the process to its exit (imports included)
    batch_seconds: float  # Batch.run() alone
    counts: dict[str, int]
    documents: int
    phases: dict[str, float]  # wall seconds per phase (progress stages)
    stages: dict[str, float]  # busy seconds per stage, summed over processes
    workers: int
    peak_rss_mb: float
    peak_pss_mb: float
    peak_main_rss_mb: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        return self.counts.get("new", 0) / self.batch_seconds if self.batch_seconds else 0.0


class TreeMemory:
    """Samples the summed RSS and PSS of a process and all its descendants until stopped."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            rss = pss = 0
            for pid in _descendants(self.pid):
                values = _rollup(pid)
                rss += values.get("Rss", 0)
                pss += values.get("Pss", 0)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (from the parent ids in ``/proc/*/stat``)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                    stat = f.read()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def _rollup(pid: int) -> dict[str, int]:
    """Rss and Pss of a process in KiB (empty when it has just exited)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return {}
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    return values


def run_batch(name: str, work: Path, sources: Path, documents: int, workers: int) -> BatchRun:
    """Run ``python -m bench.ingest --child`` (a batch as ``pipeline run`` runs it)."""
    report = work / f"{name}.report.json"
    command = [
        *(sys.executable, "-m", "bench.ingest", "--child", "--sources", str(sources)),
        *("--db", str(work / "pipeline.db"), "--warc-dir", str(work / "warc")),
        *("--workers", str(workers), "--report", str(report)),
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO_ROOT)
    with TreeMemory(process.pid) as memory:
        status = process.wait()
    seconds = time.monotonic() - started
    if status != 0:
        raise RuntimeError(f"{name}: the batch process exited with {status}")
    child = json.loads(report.read_text(encoding="utf-8"))
    return BatchRun(
        name=name,
        documents_on_site=documents,
        process_seconds=round(seconds, 2),
        batch_seconds=round(child["seconds"], 2),
        counts=child["counts"],
        documents=child["documents"],
        phases=child["phases"],
        stages=child["stages"],
        workers=workers,
        peak_rss_mb=round(memory.peak_rss / 1024, 1),
        peak_pss_mb=round(memory.peak_pss / 1024, 1),
        peak_main_rss_mb=round(child["main_max_rss_kb"] / 1024, 1),
    )


def child(args: argparse.Namespace) -> int:
    """The batch process: one run, then its report as JSON."""
    import resource

    from pipeline.batch import Batch
    from pipeline.config import load_sources
    from pipeline.progress import Progress

    class PhaseClock(Progress):
        """Adds up wall seconds per kind of progress stage (discover, crawl, annotate)."""

        def __init__(self) -> None:
            super().__init__(quiet=True)
            self.seconds: Counter[str] = Counter()

        def done(self) -> None:
            self.seconds[self._label.split()[0]] += time.monotonic() - self._started

    clock = PhaseClock()
    batch = Batch(
        load_sources(args.sources),
        db_path=args.db,
        warc_dir=args.warc_dir,
        progress=clock,
        workers=args.workers,
    )
    started = time.monotonic()
    summary = batch.run()
    seconds = time.monotonic() - started
    if summary.status != "completed":
        print(f"the batch ended {summary.status}", file=sys.stderr)
        return 1
    report = {
        "seconds": seconds,
        "counts": {key: value for key, value in summary.counts.items() if value},
        "documents": summary.documents,
        "phases": {key: round(value, 2) for key, value in clock.seconds.items()},
        "stages": {key: round(value, 2) for key, value in batch.timings.items()},
        "main_max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    args.report.write_text(json.dumps(report), encoding="utf-8")
    return 0


def first_and_second(
    name: str, articles: list[Article], limit: int | None, work: Path, workers: int, again: bool
) -> list[BatchRun]:
    """A first run over a fresh database, and optionally a second one with nothing changed."""
    work.mkdir(parents=True)
    site = PressSite(articles=articles, limit=limit, reserve=0)
    size = len(site.articles)
    with PressSiteServer(site) as server:
        sources = work / "sources.yaml"
        sources.write_text(server.sources_yaml(recrawl="6h"), encoding="utf-8")
        runs = [run_batch(f"{name}: first run", work, sources, size, workers)]
        if again:
            runs.append(run_batch(f"{name}: second run", work, sources, size, workers))
    return runs


# --------------------------------------------------------------------------- bare work


def stored_inputs(db_path: Path, warc_dir: Path) -> list[tuple[str, str, str]]:
    """(HTML as fetched, URL, extracted text) of every stored document, from the archive."""
    from pipeline.crawl.archive import WarcRef, read_record

    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT d.url, d.text, f.warc_file, f.warc_offset, f.warc_length FROM documents d"
            " JOIN fetches f ON f.id = d.fetch_id ORDER BY d.id"
        ).fetchall()
    inputs = []
    for url, text, warc_file, offset, length in rows:
        record = read_record(warc_dir, WarcRef(warc_file, offset, length))
        inputs.append((record.text or "", url, text))
    return inputs


def _bare_worker(inputs: list[tuple[str, str, str]], barrier: Any, results: Any) -> None:
    """Load the models, wait for the other workers, then time each kind of bare work."""
    import trafilatura

    from pipeline.nlp.annotate import Annotator

    annotator = Annotator()
    texts = [text for _, _, text in inputs]
    barrier.wait()
    seconds = {}
    started = time.perf_counter()
    for html, url, _ in inputs:
        trafilatura.extract(html, url=url)
    seconds["trafilatura"] = time.perf_counter() - started
    started = time.perf_counter()
    for _ in annotator.nlp.pipe(texts, batch_size=annotator.batch_size):
        pass
    seconds["ner"] = time.perf_counter() - started
    started = time.perf_counter()
    annotator.themes.predict(texts)
    seconds["themes"] = time.perf_counter() - started
    results.put(seconds)


def bare_work(inputs: list[tuple[str, str, str]], workers: int) -> dict[str, Any]:
    """The bare work split over ``workers`` processes that start together; the slowest
    process's time is the wall time the work needs with that many processes."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    shares = [inputs[i::workers] for i in range(workers)]
    processes = [
        context.Process(target=_bare_worker, args=(share, barrier, results)) for share in shares
    ]
    for process in processes:
        process.start()
    per_worker: list[dict[str, float]] = []
    while len(per_worker) < workers:
        try:
            per_worker.append(results.get(timeout=5))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):
                barrier.abort()
                raise RuntimeError("a bare-work process failed (see its traceback)") from None
    for process in processes:
        process.join()
    summed = Counter[str]()
    for seconds in per_worker:
        summed.update(seconds)
    return {
        "documents": len(inputs),
        "workers": workers,
        "wall_seconds": round(max(sum(s.values()) for s in per_worker), 2),
        "seconds": {key: round(value, 2) for key, value in summed.items()},
    }


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def summarise(runs: list[BatchRun], bare: dict[str, Any] | None) -> dict[str, Any]:
    """The headline ratios of the benchmark."""
    small, full = runs[0], runs[1]
    summary: dict[str, Any] = {
        "docs_per_second": round(full.docs_per_second, 2),
        "memory_growth_pss": round(full.peak_pss_mb / small.peak_pss_mb - 1, 3),
        "memory_growth_rss": round(full.peak_rss_mb / small.peak_rss_mb - 1, 3),
    }
    if len(runs) > 2:
        summary["second_run_ratio"] = round(runs[2].process_seconds / full.process_seconds, 4)
    if bare:
        summary["overhead_ratio"] = round(full.batch_seconds / bare["wall_seconds"], 3)
        summary["overhead_ratio_one_process"] = round(
            full.batch_seconds * full.workers / sum(bare["seconds"].values()), 3
        )
    return summary


def markdown(runs: list[BatchRun], bare: dict[str, Any] | None, summary: dict[str, Any]) -> str:
    lines = [
        "| run | documents on the site | new | time (s) | process (s) | documents/s "
        "| peak PSS (MB) | peak RSS (MB) | main process RSS (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run.name} | {run.documents_on_site} | {run.counts.get('new', 0)} "
            f"| {run.batch_seconds:.1f} | {run.process_seconds:.1f} "
            f"| {run.docs_per_second:.2f} | {run.peak_pss_mb:.0f} | {run.peak_rss_mb:.0f} "
            f"| {run.peak_main_rss_mb:.0f} |"
        )
    full = runs[1]
    busy = sum(full.stages.values())
    lines += [
        "",
        f"Where the time of the first full run goes ({full.workers} worker processes; busy "
        "seconds summed over processes, so they add up to more than the wall time):",
        "",
        "| stage | seconds | share |",
        "| --- | ---: | ---: |",
    ]
    for key, label in STAGES.items():
        if key in full.stages:
            value = full.stages[key]
            lines.append(f"| {label} | {value:.1f} | {value / busy:.0%} |")
    phases = ", ".join(f"{p} {full.phases[p]:.1f} s" for p in PHASES if p in full.phases)
    lines += ["", f"Wall time per phase: {phases}."]
    if bare:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in bare["seconds"].items())
        lines += [
            "",
            f"Bare work on the same {bare['documents']} documents in {bare['workers']} "
            f"processes: {bare['wall_seconds']:.1f} s wall ({parts}, summed over processes).",
            f"End-to-end batch time / bare work: **{summary['overhead_ratio']:.2f}** "
            f"(one-process equivalent: {summary['overhead_ratio_one_process']:.2f}).",
        ]
    lines += [
        "",
        f"Peak memory, all documents against {runs[0].documents_on_site}: "
        f"{summary['memory_growth_pss']:+.0%} (PSS), {summary['memory_growth_rss']:+.0%} (RSS).",
    ]
    if "second_run_ratio" in summary:
        lines.append(
            f"Second run with nothing changed: {runs[2].process_seconds:.1f} s, "
            f"{summary['second_run_ratio']:.1%} of the first run's {full.process_seconds:.1f} s."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs=2,
        default=None,
        metavar=("SMALL", "LARGE"),
        help="documents of the two first runs [default: 1000 and the whole corpus]",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes [default: CPUs]")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-work comparison")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sources", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warc-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if not CORPUS_DIR.is_dir():
        print(f"ingest benchmark skipped: {CORPUS_DIR} is not there", file=sys.stderr)
        return 0
    from pipeline.workers import default_workers

    workers = args.workers or default_workers()
    articles = load_articles(CORPUS_DIR)
    small, large = args.sizes or (1000, len(articles))
    before = machine()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        runs = first_and_second("small", articles, small, work / "small", workers, again=False)
        runs += first_and_second("all", articles, large, work / "all", workers, again=True)
        bare = None
        if not args.no_bare:
            inputs = stored_inputs(work / "all" / "pipeline.db", work / "all" / "warc")
            bare = bare_work(inputs, workers)
    summary = summarise(runs, bare)
    result = {
        "machine": {"before": before, "after": machine()},
        "summary": summary,
        "runs": [asdict(run) | {"docs_per_second": round(run.docs_per_second, 2)} for run in runs],
        "bare_work": bare,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "ingest.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    table = markdown(runs, bare, summary)
    (args.output_dir / "ingest.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
