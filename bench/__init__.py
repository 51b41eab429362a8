"""Benchmarks of the pipeline. ``python -m bench`` runs those listed in :mod:`bench.__main__`;
each writes its results under ``bench/results/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_results(output_dir: Path, name: str, results: Any, table: str) -> None:
    """Write a benchmark's results as ``<name>.json`` and its table as ``<name>.md``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    (output_dir / f"{name}.md").write_text(table + "\n", encoding="utf-8")
