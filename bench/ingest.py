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
import contextlib
import functools
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
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import write_results
from pipeline import sitegen
from pipeline.config import REPO_ROOT
from pipeline.sitegen import CORPUS_DIR, Article, PressSite, PressSiteServer, load_articles

RESULTS_DIR = REPO_ROOT / "bench" / "results"
SAMPLE_EVERY = 1.0
"""Seconds between two memory samples of the batch's processes. One sample reads the kernel's
page-table summary of every process (about 5 ms of CPU for a worker holding the models, 15 ms
in all) on the two cores the batch needs; four a second took some 20 CPU-s of a full run. The
batch's memory changes over seconds (models load once, chunks are small), so one a second
still finds its peak."""

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
    cpu_seconds: float  # user + system time of the batch process and its workers
    main_cpu_seconds: float  # the batch process alone: crawl, WARC, SQLite, scheduling
    job_cpu_seconds: dict[str, float]  # CPU inside the jobs (extract, annotate) and its parts
    site_cpu_seconds: float  # this process meanwhile: the site's server, the memory sampler
    sampler_cpu_seconds: float  # of which the memory sampler
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
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        started = time.thread_time()
        while not self._stop.wait(SAMPLE_EVERY):
            rss = pss = 0
            for pid in _descendants(self.pid):
                values = _rollup(pid)
                rss += values.get("Rss", 0)
                pss += values.get("Pss", 0)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.cpu_seconds = time.thread_time() - started


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
    started, started_cpu = time.monotonic(), time.process_time()
    process = subprocess.Popen(command, cwd=REPO_ROOT)
    with TreeMemory(process.pid) as memory:
        status = process.wait()
    seconds = time.monotonic() - started
    site_cpu = time.process_time() - started_cpu
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
        cpu_seconds=round(child["cpu_seconds"], 1),
        main_cpu_seconds=round(child["main_cpu_seconds"], 1),
        job_cpu_seconds=child["job_cpu_seconds"],
        site_cpu_seconds=round(site_cpu, 1),
        sampler_cpu_seconds=round(memory.cpu_seconds, 1),
        extra={"linker_in_main_process": child["linker_in_main_process"]},
    )


def child(args: argparse.Namespace) -> int:
    """The batch process: one run, then its report as JSON."""
    import resource

    from pipeline.batch import Batch
    from pipeline.config import load_sources
    from pipeline.nlp.linking import default_linker
    from pipeline.progress import Progress

    class PhaseClock(Progress):
        """Adds up wall seconds per kind of progress stage (discover, crawl, annotate)."""

        def __init__(self) -> None:
            super().__init__(quiet=True)
            self.seconds: Counter[str] = Counter()

        def done(self) -> None:
            self.seconds[self._label.split()[0]] += time.monotonic() - self._started

    def cpu(who: int) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

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
        # A document with a contact block needs the entity linker in the writing process too.
        "linker_in_main_process": default_linker.cache_info().currsize > 0,
        "cpu_seconds": cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN),
        "main_cpu_seconds": cpu(resource.RUSAGE_SELF),
        "job_cpu_seconds": {key: round(value, 2) for key, value in batch.job_cpu.items()},
    }
    args.report.write_text(json.dumps(report), encoding="utf-8")
    return 0


class StaticPressSite(PressSite):
    """The site with each response rendered once, as a real press room serves its pages from
    a cache: rendering Markdown on every request would take CPU the batch needs."""

    @functools.cache  # noqa: B019 - one site per benchmark run, kept for its whole life
    def render(self, target: str, origin: str) -> tuple[bytes, str, Any] | None:
        return super().render(target, origin)


class _NoDelayHandler(sitegen._Handler):
    """The site's handler with Nagle's algorithm off. It writes the headers and the body in
    two writes, and with Nagle on, the body then waits for the client's delayed ACK: about
    40 ms per page on Linux, which would make the benchmark measure TCP timers."""

    disable_nagle_algorithm = True


def serve(site: PressSite) -> PressSiteServer:
    """A server for ``site`` with every article rendered before the clock starts."""
    server = PressSiteServer(site)
    server._server.RequestHandlerClass = _NoDelayHandler
    for article in site.articles:
        site.render(article.path, server.origin)
    return server


def first_runs(
    articles: list[Article], limit: int, work: Path, workers: int, *, again: bool = False
) -> list[BatchRun]:
    """A first run over a fresh database, and with ``again`` a second one, nothing changed."""
    work.mkdir(parents=True)
    site = StaticPressSite(articles=articles, limit=limit, reserve=0)
    size = len(site.articles)
    with serve(site) as server:
        sources = work / "sources.yaml"
        sources.write_text(server.sources_yaml(recrawl="6h"), encoding="utf-8")
        runs = [run_batch(f"first run, {size} documents", work, sources, size, workers)]
        if again:
            runs.append(run_batch("second run, nothing changed", work, sources, size, workers))
    return runs


# --------------------------------------------------------------------------- bare work


@dataclass
class Inputs:
    """What the batch worked on: the article pages it fetched, the texts it stored."""

    pages: list[tuple[str, str]]  # (HTML as archived, URL)
    texts: list[str]

    def share(self, index: int, of: int) -> Inputs:
        return Inputs(self.pages[index::of], self.texts[index::of])


def stored_inputs(db_path: Path, warc_dir: Path) -> Inputs:
    """Every article page the batch fetched (read back from the WARC files) and every text
    it stored."""
    from pipeline.crawl.archive import WarcRef, read_record

    with closing(sqlite3.connect(db_path)) as conn:
        fetched = conn.execute(
            "SELECT f.url, f.warc_file, f.warc_offset, f.warc_length FROM fetches f"
            " JOIN pages p ON p.fetch_url = f.url WHERE p.role = 'document' AND f.status = 200"
            " ORDER BY f.id"
        ).fetchall()
        texts = [row[0] for row in conn.execute("SELECT text FROM documents ORDER BY id")]
    pages = []
    for url, warc_file, offset, length in fetched:
        record = read_record(warc_dir, WarcRef(warc_file, offset, length))
        pages.append((record.text or "", url))
    return Inputs(pages, texts)


def _bare_worker(inputs: Inputs, barrier: Any, results: Any) -> None:
    """Load the models, wait for the other workers, then time each kind of bare work (wall
    and CPU seconds)."""
    import trafilatura

    from pipeline.extract import ExtractionError, extract_page
    from pipeline.nlp.annotate import Annotator
    from pipeline.nlp.ner import SCORED_LABELS, Entity

    annotator = Annotator()
    linker = annotator.linker
    texts = inputs.texts
    found: list[list[Entity]] = []

    def extract_all() -> None:
        for html, url in inputs.pages:
            with contextlib.suppress(ExtractionError):  # pages without text cost the batch too
                extract_page(html, url)

    def ner() -> None:
        found.extend(
            [Entity(e.start_char, e.end_char, e.label_, e.text) for e in doc.ents]
            for doc in annotator.nlp.pipe(texts, batch_size=annotator.batch_size)
        )

    def link() -> None:
        for text, entities in zip(texts, found, strict=True):
            linker.link(text, [e for e in entities if e.label in SCORED_LABELS])

    work: dict[str, Callable[[], object]] = {
        "trafilatura": lambda: [trafilatura.extract(html, url=url) for html, url in inputs.pages],
        "ner": ner,
        "themes": lambda: annotator.themes.predict(texts),
        "extract_page": extract_all,
        "link": link,
    }
    barrier.wait()
    wall, cpu = {}, {}
    for kind, run in work.items():
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        wall[kind] = time.perf_counter() - started
        cpu[kind] = time.process_time() - started_cpu
    results.put((wall, cpu))


BARE = ("trafilatura", "ner", "themes")
"""The bare work as the issue defines it: the extraction library and the two models."""
SAME_CALLS = ("extract_page", "ner", "themes", "link")
"""The functions the batch itself calls on each document, with nothing around them."""


def bare_work(inputs: Inputs, workers: int) -> dict[str, Any]:
    """The bare work split over ``workers`` processes that start together.

    Each process times each kind of work on its share; the wall time of a set of kinds is
    that of the slowest process, which is what the work needs with that many processes.
    """
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    shares = [inputs.share(i, workers) for i in range(workers)]
    processes = [
        context.Process(target=_bare_worker, args=(share, barrier, results)) for share in shares
    ]
    for process in processes:
        process.start()
    per_worker: list[tuple[dict[str, float], dict[str, float]]] = []
    while len(per_worker) < workers:
        try:
            per_worker.append(results.get(timeout=5))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):
                barrier.abort()
                raise RuntimeError("a bare-work process failed (see its traceback)") from None
    for process in processes:
        process.join()
    wall: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    for seconds, cpu_seconds in per_worker:
        wall.update(seconds)
        cpu.update(cpu_seconds)
    return {
        "pages": len(inputs.pages),
        "documents": len(inputs.texts),
        "workers": workers,
        "seconds": {key: round(value, 2) for key, value in wall.items()},
        "cpu_seconds": {key: round(value, 2) for key, value in cpu.items()},
        "wall_seconds": round(max(sum(w[k] for k in BARE) for w, _ in per_worker), 2),
        "same_calls_wall_seconds": round(
            max(sum(w[k] for k in SAME_CALLS) for w, _ in per_worker), 2
        ),
    }


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def summarise(runs: dict[str, BatchRun], bare: dict[str, Any] | None) -> dict[str, Any]:
    """The headline ratios of the benchmark."""
    small, full, again = runs["small"], runs["all"], runs["again"]
    summary: dict[str, Any] = {
        "docs_per_second": round(full.docs_per_second, 2),
        "memory_growth_pss": round(full.peak_pss_mb / small.peak_pss_mb - 1, 3),
        "memory_growth_rss": round(full.peak_rss_mb / small.peak_rss_mb - 1, 3),
        "second_run_ratio": round(again.process_seconds / full.process_seconds, 4),
    }
    if "one process" in runs:
        summary["speedup_over_one_process"] = round(
            runs["one process"].batch_seconds / small.batch_seconds, 3
        )
    if bare:
        summary["overhead_ratio"] = round(full.batch_seconds / bare["wall_seconds"], 3)
        summary["overhead_ratio_same_calls"] = round(
            full.batch_seconds / bare["same_calls_wall_seconds"], 3
        )
        cpu = bare["cpu_seconds"]
        summary["cpu_ratio"] = round(full.cpu_seconds / sum(cpu[k] for k in BARE), 3)
        summary["cpu_ratio_same_calls"] = round(
            full.cpu_seconds / sum(cpu[k] for k in SAME_CALLS), 3
        )
    return summary


def markdown(
    runs: dict[str, BatchRun], bare: dict[str, Any] | None, summary: dict[str, Any]
) -> str:
    lines = [
        "| run | documents on the site | new | processes | time (s) | process (s) | documents/s "
        "| peak PSS (MB) | peak RSS (MB) | main process RSS (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs.values():
        lines.append(
            f"| {run.name} | {run.documents_on_site} | {run.counts.get('new', 0)} "
            f"| {run.workers} | {run.batch_seconds:.1f} | {run.process_seconds:.1f} "
            f"| {run.docs_per_second:.2f} | {run.peak_pss_mb:.0f} | {run.peak_rss_mb:.0f} "
            f"| {run.peak_main_rss_mb:.0f} |"
        )
    full = runs["all"]
    busy = sum(full.stages.values())
    lines += [
        "",
        f"Where the time of the first run over all documents goes ({full.workers} worker "
        "processes; busy seconds summed over processes, so they add up to more than the wall "
        "time):",
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
    if "speedup_over_one_process" in summary:
        one = runs["one process"]
        lines.append(
            f"The same {one.documents_on_site} documents in one process: "
            f"{one.batch_seconds:.1f} s, {summary['speedup_over_one_process']:.2f} times the "
            f"time with {runs['small'].workers} worker processes."
        )
    if bare:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in bare["seconds"].items())
        cpu = bare["cpu_seconds"]
        jobs = sum(full.job_cpu_seconds.get(kind, 0) for kind in ("extract", "annotate"))
        cpu_parts = ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        lines += [
            "",
            f"Bare work on the same {bare['pages']} pages and {bare['documents']} texts in "
            f"{bare['workers']} processes (seconds summed over processes: {parts}):",
            "",
            f"* trafilatura + `nlp.pipe` + classifier: {bare['wall_seconds']:.1f} s wall; "
            f"batch / bare work = **{summary['overhead_ratio']:.2f}**",
            f"* the batch's own calls (`extract_page` + `nlp.pipe` + classifier + linking): "
            f"{bare['same_calls_wall_seconds']:.1f} s wall; batch / these = "
            f"**{summary['overhead_ratio_same_calls']:.2f}**",
            "",
            "CPU time, less affected by other jobs than wall time (though the same work took up "
            "to 30 % more CPU-s on some runs of this host than on others): the batch used "
            f"{full.cpu_seconds:.0f} s (all its processes, from start to exit), "
            f"**{summary['cpu_ratio']:.2f}** times the bare work and "
            f"**{summary['cpu_ratio_same_calls']:.2f}** times its own calls "
            f"(bare CPU seconds: {cpu_parts}). Of the batch's CPU time, "
            f"{full.main_cpu_seconds:.0f} s were the main process (imports, crawl, WARC, "
            "SQLite, handing work to the workers), "
            f"{full.job_cpu_seconds.get('extract', 0):.0f} s the extraction jobs and "
            f"{full.job_cpu_seconds.get('annotate', 0):.0f} s the annotation jobs (NER, "
            "themes with their terms, linking, loading the models); the other "
            f"{full.cpu_seconds - full.main_cpu_seconds - jobs:.0f}"
            " s were the workers' start-up and moving pages and results between processes. "
            "On the same cores, the site's server used "
            f"{full.site_cpu_seconds - full.sampler_cpu_seconds:.0f} CPU-s meanwhile and the "
            f"memory sampling {full.sampler_cpu_seconds:.0f}.",
        ]
        parts = full.job_cpu_seconds
        if "ner" in parts:
            lines += [
                "",
                "Inside the annotation jobs, CPU seconds (bare work in brackets): NER "
                f"{parts['ner']:.0f} ({cpu['ner']:.0f}), themes with their terms "
                f"{parts.get('themes', 0):.0f} ({cpu['themes']:.0f}, scores only), linking "
                f"{parts.get('link', 0):.0f} ({cpu['link']:.0f}), loading the models "
                f"{parts.get('load', 0):.0f}.",
            ]
    small, again = runs["small"], runs["again"]
    lines += [
        "",
        f"Peak memory, {full.documents_on_site} against {small.documents_on_site} documents: "
        f"{summary['memory_growth_pss']:+.0%} (PSS), {summary['memory_growth_rss']:+.0%} (RSS).",
        f"Second run with nothing changed: {again.process_seconds:.1f} s, "
        f"{summary['second_run_ratio']:.1%} of the first run's {full.process_seconds:.1f} s "
        "(process start to exit).",
    ]
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
    parser.add_argument(
        "--no-single", action="store_true", help="skip the one-process run of the small size"
    )
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
    runs: dict[str, BatchRun] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        if workers > 1 and not args.no_single:
            [runs["one process"]] = first_runs(articles, small, work / "one", 1)
        [runs["small"]] = first_runs(articles, small, work / "small", workers)
        runs["all"], runs["again"] = first_runs(articles, large, work / "all", workers, again=True)
        bare = None
        if not args.no_bare:
            inputs = stored_inputs(work / "all" / "pipeline.db", work / "all" / "warc")
            bare = bare_work(inputs, workers)
    summary = summarise(runs, bare)
    result = {
        "machine": {"before": before, "after": machine()},
        "summary": summary,
        "runs": {
            key: asdict(run) | {"docs_per_second": round(run.docs_per_second, 2)}
            for key, run in runs.items()
        },
        "bare_work": bare,
    }
    table = markdown(runs, bare, summary)
    write_results(args.output_dir, "ingest", result, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
