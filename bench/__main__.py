"""Run the benchmarks: all of them (``make bench``), or some with ``--only NAME``.

A benchmark is a module of this package with ``main(argv: list[str] | None) -> int`` that
prints its table and writes its results under ``bench/results/``. Add new ones to
:data:`BENCHMARKS`; they run in the order listed, and one failing does not stop the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

#: Benchmark name → module. Keep the fast ones first.
BENCHMARKS = {
    "extraction": "bench.extraction",
    "entities": "bench.entities",
    "ner": "bench.ner",
    "themes-labels": "bench.themes_labels",
    "themes-calibration": "bench.themes_calibration",
    "crawl": "bench.crawl",
    "ingest": "bench.ingest",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    args = parser.parse_args(argv)
    chosen = [name for name in BENCHMARKS if not args.only or name in args.only]
    failed = []
    for name in chosen:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            status = importlib.import_module(BENCHMARKS[name]).main([])
        except Exception:  # one broken benchmark must not hide the others' results
            traceback.print_exc()
            status = 1
        print(
            f"== {name}: {'ok' if status == 0 else 'FAILED'} in {time.monotonic() - started:.1f} s"
        )
        if status != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
