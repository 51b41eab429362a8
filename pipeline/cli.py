"""The ``pipeline`` command: a thin click layer over the library functions the tests also call."""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TextIO

import click

from pipeline.config import DEFAULT_SOURCES, SAMPLE_SOURCES, ConfigError, load_sources

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_DB = DATA_DIR / "pipeline.db"

db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="SQLite database file.",
)


def _fail(message: str) -> None:
    raise click.ClickException(message)


@click.group()
@click.version_option(package_name="pipeline")
def cli() -> None:
    """Crawl Swedish press rooms and blogs, find organisations, people, places and themes,
    and explore the result in Datasette."""


# --------------------------------------------------------------------------- batch


@cli.command()
@click.option("--sample", is_flag=True, help="Crawl the bundled offline sample sites instead.")
@click.option(
    "--sources",
    "sources_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Sources file [default: {DEFAULT_SOURCES.relative_to(DEFAULT_SOURCES.parents[1])}].",
)
@click.option("--source", "only", multiple=True, help="Only this source id (repeatable).")
@db_option
@click.option(
    "--warc-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DATA_DIR / "warc",
    show_default=True,
    help="Where raw responses are archived.",
)
@click.option("--quiet", is_flag=True, help="Only print the summary.")
def run(
    sample: bool,
    sources_path: Path | None,
    only: tuple[str, ...],
    db_path: Path,
    warc_dir: Path,
    quiet: bool,
) -> None:
    """Run one ingestion batch: crawl, extract, annotate, classify, store."""
    from pipeline.batch import Batch, BatchLockedError
    from pipeline.progress import Progress
    from pipeline.sample import SampleServer

    path = sources_path or (SAMPLE_SOURCES if sample else DEFAULT_SOURCES)
    config = _load(path)
    progress = Progress(quiet=quiet)
    server = SampleServer() if sample else nullcontext()
    try:
        with server as running:
            transport = running.transport() if sample else None
            if sample:
                progress.log(f"serving the sample sites on 127.0.0.1:{running.port}")
            batch = Batch(
                config, db_path=db_path, warc_dir=warc_dir, transport=transport, progress=progress
            )
            summary = batch.run(list(only) or None)
    except BatchLockedError as exc:
        _fail(str(exc))
    except KeyError as exc:
        _fail(str(exc.args[0]))
    _print_summary(summary, db_path)


def _print_summary(summary: object, db_path: Path) -> None:
    counts = summary.counts
    click.echo(
        f"\nRun {summary.run_id} finished in {summary.duration:.1f} s: "
        + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in counts.items())
    )
    click.echo(f"Documents in {db_path}: {summary.documents}")
    entities = ", ".join(f"{label} {n}" for label, n in summary.entities.items()) or "none"
    click.echo(f"Entities: {entities}")
    themes = ", ".join(f"{slug} {n}" for slug, n in summary.themes.items()) or "none"
    click.echo(f"Themes (documents): {themes}")
    serve = "pipeline serve" if db_path == DEFAULT_DB else f"pipeline serve --db {db_path}"
    click.echo(f"\nBrowse the result: {serve}")


def _load(path: Path):
    try:
        return load_sources(path)
    except ConfigError as exc:
        _fail(str(exc))


@cli.command()
@db_option
@click.option("--limit", default=10, show_default=True, help="How many recent runs.")
def runs(db_path: Path, limit: int) -> None:
    """Show recent runs and their counts."""
    from pipeline.store.db import open_db

    if not db_path.exists():
        _fail(f"no database at {db_path}: run `pipeline run` first")
    db = open_db(db_path)
    rows = db.conn.execute(
        "SELECT id, started, status, discovered, fetched, not_modified, new, changed, gone,"
        " failed, duration_seconds FROM runs ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    header = ("run", "started", "status", "disc", "fetch", "304", "new", "chg", "gone", "fail", "s")
    click.echo(" ".join(f"{h:>8}" for h in header))
    for row in rows:
        click.echo(" ".join(f"{'' if v is None else v!s:>8}" for v in row))


@cli.group()
def sources() -> None:
    """Inspect and validate the sources file."""


@sources.command("check")
@click.argument(
    "path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_SOURCES, required=False
)
def sources_check(path: Path) -> None:
    """Validate a sources file without crawling."""
    config = _load(path)
    for source in config.sources:
        methods = ", ".join(f"{d.method} {d.url}" for d in source.discover)
        click.echo(f"{source.id}: {source.name} [{source.kind}] – {methods}")
    click.echo(f"{path}: {len(config.sources)} sources, all valid")


# --------------------------------------------------------------------------- one-off stages


@cli.command("extract")
@click.argument("html_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default=None, help="The page's URL (helps with relative links and rules).")
def extract_command(html_file: Path, url: str | None) -> None:
    """Extract title, date, author and main text from one saved HTML page, as JSON."""
    from pipeline.crawl.fetch import decode_html
    from pipeline.extract import ExtractionError, extract

    html = decode_html(html_file.read_bytes())
    try:
        result = extract(html, url)
    except ExtractionError as exc:
        _fail(f"{html_file}: {exc}")
    payload = {
        "title": result.title,
        "published": result.published,
        "author": result.author,
        "text": result.text,
    }
    payload.update({k: v for k, v in result.to_dict().items() if k not in payload})
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))


@cli.command("annotate-text")
@click.argument("input_file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--batch-size", default=256, show_default=True, help="Texts per model batch.")
def annotate_text(input_file: TextIO, batch_size: int) -> None:
    """Entities and themes for JSON lines {"id", "text"}; one JSON line out per line in."""
    from pipeline.nlp.annotate import Annotator

    annotator = Annotator(batch_size=64)
    batch: list[dict] = []
    for number, line in enumerate(input_file, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record.get("text"), str):
                raise ValueError('expected a "text" string')
        except (ValueError, AttributeError) as exc:
            _fail(f"line {number}: not a JSON object with a text: {exc}")
        batch.append(record)
        if len(batch) >= batch_size:
            _emit(annotator, batch)
            batch = []
    _emit(annotator, batch)


def _emit(annotator: object, records: list[dict]) -> None:
    if not records:
        return
    results = annotator.annotate([r["text"] for r in records])
    for record, annotation in zip(records, results, strict=True):
        line = {"id": record.get("id"), **annotation.to_dict()}
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- models


@cli.command("train-ner")
@click.option("--config", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None)
def train_ner_command(config: Path | None, data: Path | None, output: Path | None) -> None:
    """Train the Swedish NER model from ../shared/data/ner into models/ner."""
    from pipeline.nlp import ner_data

    result = ner_data.train_ner(
        config or ner_data.DEFAULT_CONFIG,
        data or ner_data.DEFAULT_DATA_DIR,
        output or ner_data.DEFAULT_OUTPUT,
    )
    click.echo(f"model written to {result}")


@cli.command("evaluate-ner")
@click.argument("jsonl", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", type=click.Path(file_okay=False, path_type=Path), default=None)
def evaluate_ner_command(jsonl: Path, model: Path | None) -> None:
    """Score the NER model on JSON lines {"id", "text", "entities": [[start, end, label]]}."""
    from pipeline.nlp.ner import DEFAULT_NER_MODEL, evaluate, load_ner, read_jsonl

    scores = evaluate(load_ner(model or DEFAULT_NER_MODEL), read_jsonl(jsonl))
    _print_scores(scores, "label")


@cli.command("train-themes")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None)
def train_themes_command(output: Path | None) -> None:
    """Train the theme classifier into models/themes."""
    from pipeline.nlp import themes

    metrics = themes.train_themes(
        themes.DEFAULT_PRESS_DIR,
        themes.DEFAULT_THEMES,
        output or themes.DEFAULT_THEME_MODEL,
        heldout=themes.DEFAULT_HELDOUT,
    )
    click.echo(json.dumps(metrics.get("model", metrics), ensure_ascii=False, indent=2))


@cli.command("evaluate-themes")
@click.argument("jsonl", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", type=click.Path(file_okay=False, path_type=Path), default=None)
def evaluate_themes_command(jsonl: Path, model: Path | None) -> None:
    """Score the theme model on JSON lines {"id", "text", "themes": [slugs]}."""
    from pipeline.nlp.themes import DEFAULT_THEME_MODEL, ThemeModel, evaluate_themes

    with jsonl.open(encoding="utf-8") as handle:
        examples = [json.loads(line) for line in handle if line.strip()]
    scores = evaluate_themes(ThemeModel.load(model or DEFAULT_THEME_MODEL), examples)
    _print_scores(scores, "theme")


def _print_scores(scores: dict, what: str) -> None:
    click.echo(json.dumps(scores, ensure_ascii=False, indent=2))


# --------------------------------------------------------------------------- serving


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("-p", "--port", default=8001, show_default=True, type=int)
@click.option("--public", is_flag=True, help="Read-only, no arbitrary SQL: safe to publish.")
def serve(db_path: Path, host: str, port: int, public: bool) -> None:
    """Explore the database in Datasette."""
    from pipeline.serve.datasette import datasette_command
    from pipeline.store.db import open_db

    if not db_path.exists():
        _fail(f"no database at {db_path}: run `pipeline run --sample` (or `make run`) first")
    open_db(db_path).close()
    command = datasette_command(db_path, host=host, port=port, public=public)
    click.echo(f"Datasette on http://{host}:{port}/ ({'public' if public else 'local'} mode)")
    os.execvp(command[0], command)
