"""The ``pipeline`` command: a thin click layer over the library functions the tests also call."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from pipeline.config import DEFAULT_SOURCES, SAMPLE_SOURCES, ConfigError, load_sources

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_DB = DATA_DIR / "pipeline.db"

db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="SQLite database file.",
)

warc_option = click.option(
    "--warc-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DATA_DIR / "warc",
    show_default=True,
    help="Where raw responses are archived (WARC files).",
)


def sources_option(default: Path | None, help: str) -> Callable[[F], F]:
    """``--sources FILE``: the sources file a command reads (the default differs for ``run``,
    where ``--sample`` picks the bundled file)."""
    return click.option(
        "--sources",
        "sources_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=default,
        show_default=default is not None,
        help=help,
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
@sources_option(
    None, f"Sources file [default: {DEFAULT_SOURCES.relative_to(DEFAULT_SOURCES.parents[1])}]."
)
@click.option("--source", "only", multiple=True, help="Only this source id (repeatable).")
@db_option
@warc_option
@click.option("--quiet", is_flag=True, help="Only print the summary.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for extraction and annotation [default: one per CPU, at most 4].",
)
def run(
    sample: bool,
    sources_path: Path | None,
    only: tuple[str, ...],
    db_path: Path,
    warc_dir: Path,
    quiet: bool,
    workers: int | None,
) -> None:
    """Run one ingestion batch: crawl, extract, annotate, classify, store."""
    path = sources_path or (SAMPLE_SOURCES if sample else DEFAULT_SOURCES)
    config = _load(path)  # before the heavy imports: a mistake in the file is reported at once
    from pipeline.batch import Batch, BatchFailed
    from pipeline.progress import Progress
    from pipeline.sample import SampleServer
    from pipeline.store.lock import BatchLockedError

    progress = Progress(quiet=quiet)
    server = SampleServer() if sample else nullcontext()
    try:
        with server as running:
            transport = running.transport() if sample else None
            if sample:
                progress.log(f"serving the sample sites on 127.0.0.1:{running.port}")
            batch = Batch(
                config,
                db_path=db_path,
                warc_dir=warc_dir,
                transport=transport,
                progress=progress,
                workers=workers,
            )
            summary = batch.run(list(only) or None)
    except (BatchLockedError, BatchFailed) as exc:
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


@cli.command()
@sources_option(DEFAULT_SOURCES, "Sources file.")
@db_option
@warc_option
@click.option("--once", is_flag=True, help="Run what is due now, then exit (for cron).")
@click.option("--print-cron", is_flag=True, help="Print a crontab entry and exit.")
@click.option("--print-systemd", is_flag=True, help="Print a systemd service unit and exit.")
def schedule(
    sources_path: Path,
    db_path: Path,
    warc_dir: Path,
    once: bool,
    print_cron: bool,
    print_systemd: bool,
) -> None:
    """Run the batch on each source's re-crawl interval, in the foreground, until SIGTERM."""
    import threading

    from pipeline.batch import Batch
    from pipeline.progress import Progress
    from pipeline.schedule import cron_line, install_stop_handlers, run_schedule, systemd_unit

    config = _load(sources_path)
    if print_cron or print_systemd:
        printer = cron_line if print_cron else systemd_unit
        click.echo(printer(config, db_path, warc_dir), nl=False)
        return
    progress = Progress()
    stop = threading.Event()
    install_stop_handlers(stop, progress)
    batch = Batch(config, db_path=db_path, warc_dir=warc_dir, progress=progress, stop=stop)
    run_schedule(batch, once=once)


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
@click.option(
    "--fetched-at",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="When the page was saved (Swedish time); resolves dates such as 'igår'.",
)
def extract_command(html_file: Path, url: str | None, fetched_at: datetime | None) -> None:
    """Extract title, date, author and main text from one saved HTML page, as JSON.

    A listing page (teasers of other pages) prints {"listing": true, "links": [...]}.
    """
    from pipeline.crawl.fetch import decode_html
    from pipeline.extract import ExtractionError, Listing, extract_page

    html = decode_html(html_file.read_bytes())
    try:
        result = extract_page(html, url, fetched_at=fetched_at)
    except ExtractionError as exc:
        _fail(f"{html_file}: {exc}")
    if isinstance(result, Listing):
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    payload = {
        "title": result.title,
        "published": result.published,
        "author": result.author,
        "text": result.text,
    }
    payload.update({k: v for k, v in result.to_dict().items() if k not in payload})
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))


@cli.command()
@click.option(
    "--stage",
    type=click.Choice(["extract", "themes"]),
    required=True,
    help="What to run again: extract (from the archived responses) or themes (re-score the"
    " stored texts with the current theme model).",
)
@click.option("--source", "only", multiple=True, help="Only this source id (repeatable).")
@sources_option(DEFAULT_SOURCES, "Sources file with the selectors to use.")
@db_option
@warc_option
def reprocess(
    stage: str, only: tuple[str, ...], sources_path: Path, db_path: Path, warc_dir: Path
) -> None:
    """Run a stage again over what is stored (archived responses or texts), fetching nothing."""
    from pipeline.progress import Progress
    from pipeline.reprocess import STAGES
    from pipeline.reprocess import reprocess as run_again
    from pipeline.store.lock import BatchLockedError

    _require_db(db_path)
    config = _load(sources_path)
    known = {s.id for s in config.sources}
    unknown = [s for s in only if s not in known]
    if unknown:
        _fail(f"no source {unknown[0]!r} in {sources_path}")
    try:
        counts = run_again(
            stage, db_path, warc_dir, config, source_ids=list(only) or None, progress=Progress()
        )
    except BatchLockedError as exc:
        _fail(str(exc))
    _, order = STAGES[stage]
    click.echo(", ".join(f"{key} {counts.get(key, 0)}" for key in order))


@cli.command("annotate-text")
@click.argument("input_file", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--batch-size",
    default=256,
    show_default=True,
    help="Input lines annotated together; their results are written before the next are read.",
)
def annotate_text(input_file: TextIO, batch_size: int) -> None:
    """Entities and themes for JSON lines {"id", "text"}; one JSON line out per line in."""
    from pipeline.nlp.annotate import Annotator

    annotator = Annotator(batch_size=64, link=False, explain=False)
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
@click.option(
    "--errors",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write every wrong or missed span, with its context, as JSON lines to this file.",
)
def evaluate_ner_command(jsonl: Path, model: Path | None, errors: Path | None) -> None:
    """Score the NER model on JSON lines {"id", "text", "entities": [[start, end, label]]}."""
    from pipeline.nlp.ner import (
        DEFAULT_NER_MODEL,
        EvaluationTextError,
        evaluate,
        load_ner,
        read_jsonl,
        with_texts,
    )

    try:
        records = list(with_texts(read_jsonl(jsonl)))
    except EvaluationTextError as error:
        raise click.ClickException(str(error)) from None
    found: list[dict] = []  # filled only when asked for: listing errors is extra work
    nlp = load_ner(model or DEFAULT_NER_MODEL)
    scores = evaluate(nlp, records, errors=found if errors is not None else None)
    if errors is not None:
        lines = (json.dumps(error, ensure_ascii=False) + "\n" for error in found)
        errors.write_text("".join(lines), encoding="utf-8")
    _print_scores(scores, "label")


@cli.command("train-themes")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None)
def train_themes_command(output: Path | None) -> None:
    """Train the theme classifier on corpus/labels into models/themes; print test scores."""
    from pipeline.nlp import themes

    metrics = themes.train_themes(output or themes.DEFAULT_THEME_MODEL)
    click.echo(json.dumps(metrics["test"], ensure_ascii=False, indent=2))


@cli.command("evaluate-themes")
@click.argument("jsonl", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", type=click.Path(file_okay=False, path_type=Path), default=None)
def evaluate_themes_command(jsonl: Path, model: Path | None) -> None:
    """Score the theme model on JSON lines {"id", "text", "themes": [slugs]}."""
    from pipeline.nlp.themes import DEFAULT_THEME_MODEL, ThemeModel, evaluate_themes

    examples = []
    with jsonl.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                examples.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise click.ClickException(f"{jsonl}:{number}: not JSON ({error.msg})") from None
    theme_model = ThemeModel.load(model or DEFAULT_THEME_MODEL)
    try:
        scores = evaluate_themes(theme_model, examples)
    except ValueError as error:  # a slug outside the taxonomy
        known = ", ".join(theme_model.slugs)
        raise click.ClickException(f"{jsonl}: {error}; the themes are: {known}") from None
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
    """Explore the database in Datasette (local: SQL allowed; --public: read-only)."""
    from pipeline.serve.datasette import datasette_command, prepare_database

    _require_db(db_path)
    prepare_database(db_path, public=public)
    command = datasette_command(db_path, host=host, port=port, public=public)
    click.echo(f"Datasette on http://{host}:{port}/ ({'public' if public else 'local'} mode)")
    os.execvp(command[0], command)


def _require_db(db_path: Path) -> None:
    if not db_path.exists():
        _fail(f"no database at {db_path}: run `pipeline run --sample` (or `make run`) first")


@cli.command()
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@db_option
def publish(output_dir: Path, db_path: Path) -> None:
    """Write a directory that serves the database in public mode (see its run.sh)."""
    from pipeline.serve.publish import PublishError
    from pipeline.serve.publish import publish as publish_directory

    _require_db(db_path)
    try:
        written = publish_directory(db_path, output_dir)
    except PublishError as exc:
        _fail(str(exc))
    click.echo(f"{len(written)} files written to {output_dir}; serve with: sh {output_dir}/run.sh")


@cli.command("export")
@db_option
@click.option(
    "--output",
    "output",
    type=click.File("w", encoding="utf-8"),
    default="-",
    show_default=True,
    help="JSON-lines file to write, or - for standard output.",
)
def export_command(db_path: Path, output: TextIO) -> None:
    """Documents as JSON lines: fields, text, entity mentions and themes."""
    from pipeline.export import export_documents

    _require_db(db_path)
    count = export_documents(db_path, output)
    click.echo(f"{count} documents exported", err=True)


@cli.command("export-graph")
@db_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=Path("entities.gexf"),
    show_default=True,
    help="File to write (.gexf or .graphml), or - for standard output.",
)
@click.option(
    "--format",
    "graph_format",
    type=click.Choice(["gexf", "graphml"]),
    default=None,
    help="Graph format [default: from the file name, else gexf].",
)
@click.option(
    "--label",
    "labels",
    type=click.Choice(["ORG", "PER", "LOC"]),
    multiple=True,
    help="Only entities with this label (repeatable) [default: all].",
)
@click.option("--min-documents", default=1, show_default=True, help="Weakest link to keep.")
def export_graph_command(
    db_path: Path,
    output: Path,
    graph_format: str | None,
    labels: tuple[str, ...],
    min_documents: int,
) -> None:
    """The network of entities named in the same documents, for Gephi (GEXF or GraphML)."""
    from pipeline.graph import LABELS, export_graph, format_for

    _require_db(db_path)
    chosen = format_for(output, graph_format)
    with click.open_file(str(output), "wb") as handle:
        nodes, edges = export_graph(
            db_path,
            handle,
            graph_format=chosen,
            labels=labels or LABELS,
            min_documents=min_documents,
        )
    where = "standard output" if str(output) == "-" else output
    click.echo(f"{nodes} entities and {edges} links written to {where} ({chosen})", err=True)


@cli.command()
@db_option
def relink(db_path: Path) -> None:
    """Link the stored mentions to entities again (after editing corpus/gazetteer), without NER."""
    from pipeline.nlp.entities import relink as relink_documents
    from pipeline.store.db import open_db
    from pipeline.store.lock import BatchLockedError, batch_lock

    _require_db(db_path)
    try:
        with batch_lock(db_path):
            db = open_db(db_path)
            try:
                count = relink_documents(db)
            finally:
                db.close()
    except BatchLockedError as exc:
        _fail(str(exc))
    click.echo(f"{count} documents relinked")
