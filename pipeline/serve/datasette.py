"""Starting Datasette on the pipeline's database with the project's metadata and plugins.

Two modes: the analyst's local view (arbitrary SQL allowed, the file opened read-write so a
batch can keep writing) and ``--public`` for publishing (immutable file, SQL off, a time limit,
robots told to stay away, only canned queries).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

METADATA = Path(__file__).with_name("metadata.yml")
PUBLIC_SETTINGS = {
    "sql_time_limit_ms": "2000",
    "default_page_size": "50",
    "max_returned_rows": "1000",
    "allow_download": "off",
    "allow_facet": "on",
}


def datasette_command(
    db_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    public: bool = False,
    metadata: Path = METADATA,
) -> list[str]:
    """The ``datasette serve`` command line for the given mode."""
    executable = shutil.which("datasette", path=str(Path(sys.executable).parent)) or "datasette"
    command = [executable, "serve", *(["-i"] if public else []), str(db_path)]
    command += ["--metadata", str(metadata), "--host", host, "--port", str(port)]
    if public:
        for name, value in PUBLIC_SETTINGS.items():
            command += ["--setting", name, value]
        command += ["--setting", "default_allow_sql", "off"]
    else:
        command += ["--setting", "sql_time_limit_ms", "5000"]
    return command
