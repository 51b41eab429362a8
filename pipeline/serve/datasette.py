"""Starting Datasette on the pipeline's database with the project's metadata and plugins.

Two modes: the analyst's local view (arbitrary SQL allowed, the file opened read-write so a
batch can keep writing) and ``--public`` for publishing (immutable file, SQL off, a time limit,
robots told to stay away, only canned queries).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from pipeline.store.db import open_db
from pipeline.store.schema import VIEWS

SERVE_DIR = Path(__file__).parent
METADATA = SERVE_DIR / "metadata.yml"
TEMPLATES = SERVE_DIR / "templates"
PLUGINS = SERVE_DIR / "plugins"

SHARED_SETTINGS = {
    "default_page_size": "50",
    # The overview's facets count JSON arrays over every document: more than the default 200 ms.
    "facet_time_limit_ms": "1000",
}
LOCAL_SETTINGS = {"sql_time_limit_ms": "5000"}
PUBLIC_SETTINGS = {
    "sql_time_limit_ms": "2000",
    "max_returned_rows": "1000",
    "allow_download": "off",
    "default_allow_sql": "off",
    # Suggesting facets probes every column of a table on every page view: about a second per
    # page at 10,000 documents, too much for a public site. Configured facets still show.
    "suggest_facets": "off",
}
VIEW_NAME = re.compile(r"CREATE VIEW IF NOT EXISTS (\w+)")


def datasette_command(
    db_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int | str = 8001,
    public: bool = False,
    metadata: Path = METADATA,
    templates: Path = TEMPLATES,
    plugins: Path = PLUGINS,
    executable: str | None = None,
) -> list[str]:
    """The ``datasette serve`` command line for the given mode.

    ``pipeline publish`` writes the same command with relative paths into ``run.sh``, so the
    public mode tested here is the one that gets deployed.
    """
    if executable is None:
        found = shutil.which("datasette", path=str(Path(sys.executable).parent))
        executable = found or "datasette"
    command = [executable, "serve", *(["-i"] if public else []), str(db_path)]
    command += ["--metadata", str(metadata), "--template-dir", str(templates)]
    command += ["--plugins-dir", str(plugins), "--host", host, "--port", str(port)]
    settings = {**SHARED_SETTINGS, **(PUBLIC_SETTINGS if public else LOCAL_SETTINGS)}
    for name, value in settings.items():
        command += ["--setting", name, value]
    return command


def prepare_database(db_path: Path, *, public: bool = False) -> None:
    """Make the database ready to serve: current views, and for ``-i`` no pending WAL.

    Views are dropped and created again because ``CREATE VIEW IF NOT EXISTS`` keeps an older
    definition in a database made before a view changed, and the metadata describes the
    current one. An immutable database is read without its WAL file, so whatever is still in
    the WAL is written into the main file first.
    """
    db = open_db(db_path)
    try:
        drops = "".join(f'DROP VIEW IF EXISTS "{name}";\n' for name in VIEW_NAME.findall(VIEWS))
        db.conn.executescript(f"BEGIN IMMEDIATE;\n{drops}{VIEWS}\nCOMMIT;")
        if public:
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
