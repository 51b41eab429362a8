"""A directory that serves the database in public mode anywhere Python runs.

``pipeline publish OUTPUT_DIR`` writes a consistent copy of the database, the metadata, the
templates and the plugin, a ``requirements.txt`` pinned to the Datasette and plugin versions
the tests ran against, and ``run.sh`` / ``Procfile`` with the public-mode command line. The
directory needs nothing from this repository: ``pip install -r requirements.txt && sh run.sh``.
"""

from __future__ import annotations

import shlex
import shutil
import sqlite3
from importlib.metadata import version
from pathlib import Path

from pipeline.serve.datasette import (
    METADATA,
    PLUGINS,
    TEMPLATES,
    datasette_command,
    prepare_database,
)

REQUIREMENTS = (
    "datasette",
    "datasette-cluster-map",
    "datasette-leaflet",
    "datasette-vega",
    "datasette-block-robots",
)
"""The distributions the public site needs; pinned to the versions installed here."""

DATABASE_FILE = "pipeline.db"
PORT = "${PORT:-8001}"


class PublishError(RuntimeError):
    """The output directory cannot be written without losing someone's files."""


def publish(db_path: Path, output_dir: Path) -> list[Path]:
    """Write the deployable directory and return the files written.

    An existing directory is only overwritten when it is empty or an earlier publish (it has
    a ``run.sh``), so a typo in the path never clobbers unrelated files.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not (output_dir / "run.sh").exists():
        raise PublishError(f"{output_dir} is not empty and not an earlier publish; choose another")
    output_dir.mkdir(parents=True, exist_ok=True)
    copy_database(Path(db_path), output_dir / DATABASE_FILE)
    shutil.copyfile(METADATA, output_dir / "metadata.yml")
    for folder in (TEMPLATES, PLUGINS):
        target = output_dir / folder.name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("__pycache__"))
    (output_dir / "requirements.txt").write_text(requirements(), encoding="utf-8")
    run = output_dir / "run.sh"
    run.write_text(run_script(), encoding="utf-8")
    run.chmod(0o755)
    (output_dir / "Procfile").write_text("web: sh run.sh\n", encoding="utf-8")
    (output_dir / "README.md").write_text(readme(), encoding="utf-8")
    return sorted(p for p in output_dir.rglob("*") if p.is_file())


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API, even while a batch is writing.

    The copy gets the current views and a rollback journal instead of WAL: an immutable
    database is read without its WAL, and a deployed file should be a single file.
    """
    target.unlink(missing_ok=True)
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()
    prepare_database(target, public=True)
    writer = sqlite3.connect(target)
    try:
        writer.execute("PRAGMA journal_mode=DELETE")
    finally:
        writer.close()


def requirements() -> str:
    return "".join(f"{name}=={version(name)}\n" for name in REQUIREMENTS)


def run_script() -> str:
    """``run.sh``: the public-mode command with paths relative to the published directory."""
    command = datasette_command(
        Path(DATABASE_FILE),
        host="0.0.0.0",
        port=PORT,
        public=True,
        metadata=Path("metadata.yml"),
        templates=Path(TEMPLATES.name),
        plugins=Path(PLUGINS.name),
        executable="datasette",
    )
    line = " ".join(f'"{part}"' if part == PORT else shlex.quote(part) for part in command)
    return (
        "#!/bin/sh\n"
        "# Public, read-only Datasette: immutable file, no arbitrary SQL, canned queries only.\n"
        "# PORT is set by most hosting platforms; 8001 otherwise.\n"
        'cd "$(dirname "$0")"\n'
        f"exec {line}\n"
    )


def readme() -> str:
    return (
        "# Published pipeline database\n\n"
        "Serve it read-only (immutable file, no arbitrary SQL, robots blocked):\n\n"
        "```sh\n"
        "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\n"
        "PATH=.venv/bin:$PATH sh run.sh      # http://0.0.0.0:${PORT:-8001}/\n"
        "```\n\n"
        "`Procfile` runs the same script on platforms that read one.\n"
    )
