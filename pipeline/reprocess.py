"""Re-running a stage over stored pages, without fetching anything.

Every response the crawler fetched is in the WARC archive and located by its ``fetches`` row, so
an improved extractor (or a corrected selector in ``sources.yaml``) can be applied to everything
already collected: ``pipeline reprocess --stage extract`` reads each document's latest
successful response back from the archive and extracts it again.

A changed text is saved as a new version through :func:`pipeline.store.db.save_document` and is
therefore annotated again by the next batch; an unchanged text keeps its version and its
annotations, and only its title, date, author and contacts are brought up to date. A page that
now reads as a listing keeps its document (deleting stored documents is not this command's call)
and has its links added to the frontier. Re-extraction runs under the batch lock, so it never
interleaves with a crawl writing the same documents.

After the theme model is retrained, ``pipeline reprocess --stage themes`` re-scores the stored
texts with it (:func:`reprocess_themes`) and touches nothing else.

Stages are looked up in :data:`STAGES`, so that further stages can be added next to ``extract``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlite_utils

from pipeline.config import Source, SourcesConfig
from pipeline.crawl.archive import ArchiveError, WarcRef, read_record
from pipeline.crawl.discover import Link
from pipeline.crawl.frontier import enqueue
from pipeline.extract import ExtractionError, Listing, extract_page
from pipeline.progress import Progress
from pipeline.store.db import (
    open_db,
    refresh_metadata,
    replace_themes,
    save_document,
    sync_themes,
)
from pipeline.store.lock import batch_lock


@dataclass(frozen=True)
class StoredPage:
    """A document and the archived response its next extraction reads."""

    document_id: int
    url: str
    source_id: str
    fetch_id: int
    fetched_at: str
    ref: WarcRef


def stored_pages(
    db: sqlite_utils.Database, source_ids: Sequence[str] | None = None
) -> list[StoredPage]:
    """Each document with its latest successful fetch that has an archived response.

    The fetch is looked up by the page's fetch URL, so a later 200 that carried the same text
    (and did not change the document) is still the one read; documents whose response is not in
    the archive are left out.
    """
    query = (
        "SELECT d.id, d.url, d.source_id, f.id, f.fetched_at, f.warc_file, f.warc_offset,"
        " f.warc_length FROM documents d"
        " LEFT JOIN pages p ON p.url = d.url"
        " JOIN fetches f ON f.id = COALESCE("
        "   (SELECT f2.id FROM fetches f2 WHERE f2.url IN (p.fetch_url, d.url)"
        "    AND f2.status BETWEEN 200 AND 299 AND f2.warc_file IS NOT NULL"
        "    ORDER BY f2.id DESC LIMIT 1), d.fetch_id)"
        " WHERE f.warc_file IS NOT NULL"
    )
    parameters: list[str] = []
    if source_ids:
        query += f" AND d.source_id IN ({', '.join('?' for _ in source_ids)})"
        parameters += list(source_ids)
    rows = db.conn.execute(query + " ORDER BY d.id", parameters).fetchall()
    return [
        StoredPage(doc, url, source, fetch, fetched_at, WarcRef(file, offset, length))
        for doc, url, source, fetch, fetched_at, file, offset, length in rows
    ]


def reprocess_extract(
    db: sqlite_utils.Database,
    warc_dir: Path,
    config: SourcesConfig,
    *,
    source_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Counter[str]:
    """Extract every stored document again from the archive; return what happened to each.

    ``changed``: new text, saved as a new version; ``updated``: same text, new title, date,
    author or contacts; ``unchanged``; ``listing``: the page now reads as a listing, its links
    were queued; ``failed``: the record is unreadable or holds no text (the document is kept);
    ``skipped``: the document's source is no longer in the sources file.
    """
    progress = progress or Progress(quiet=True)
    sources = {source.id: source for source in config.sources}
    pages = stored_pages(db, source_ids)
    counts: Counter[str] = Counter()
    progress.stage("re-extract", len(pages))
    for stored in pages:
        source = sources.get(stored.source_id)
        if source is None:
            counts["skipped"] += 1
        else:
            counts[_reextract(db, Path(warc_dir), source, stored, progress)] += 1
        progress.advance()
    progress.done()
    return counts


def _reextract(
    db: sqlite_utils.Database,
    warc_dir: Path,
    source: Source,
    stored: StoredPage,
    progress: Progress,
) -> str:
    try:
        response = read_record(warc_dir, stored.ref)
        fetched_at = datetime.fromisoformat(stored.fetched_at.replace("Z", "+00:00"))
        result = extract_page(
            response.text or "", response.url, source.selectors, fetched_at=fetched_at
        )
    except (ArchiveError, ExtractionError) as exc:
        progress.log(f"{source.id}: {stored.url}: {exc}")
        return "failed"
    if isinstance(result, Listing):
        enqueue(db, source, [Link(url) for url in result.links])
        return "listing"
    saved = save_document(
        db,
        url=stored.url,
        source_id=source.id,
        kind=source.kind,
        extracted=result,
        fetch_id=stored.fetch_id,
    )
    if saved.outcome != "unchanged" or saved.document_id is None:
        return saved.outcome
    changed = refresh_metadata(db, saved.document_id, kind=source.kind, extracted=result)
    return "updated" if changed else "unchanged"


THEMES_BATCH = 200
"""Documents scored, and their themes replaced in one transaction, at a time."""


def reprocess_themes(
    db: sqlite_utils.Database,
    warc_dir: Path,
    config: SourcesConfig,
    *,
    source_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    model_dir: Path | None = None,
) -> Counter[str]:
    """Score every Swedish document again with the current theme model; return the counts.

    Used after ``pipeline train-themes``: each document's ``document_themes`` rows are replaced
    (score, model version, the terms that drove each score), THEMES_BATCH documents per
    transaction, and mentions are left alone, so that re-scoring costs no NER. The archive and
    the sources file are not needed (the stored text is scored); the parameters keep the
    signature of the other stages. ``documents``: re-scored; ``themes``: theme rows written;
    ``empty``: documents without text, whose themes are removed. ``model_dir`` defaults to
    models/themes.
    """
    # Imported here so that the other stages do not load scikit-learn.
    from pipeline.nlp.themes import DEFAULT_THEME_MODEL, ThemeModel

    progress = progress or Progress(quiet=True)
    model = ThemeModel.load(model_dir or DEFAULT_THEME_MODEL)
    sync_themes(db, model.themes)
    # The languages the annotator runs the Swedish models on (pipeline.nlp.annotate).
    query = "SELECT id, text FROM documents WHERE (language IS NULL OR language = 'sv')"
    parameters: list[str] = []
    if source_ids:
        query += f" AND source_id IN ({', '.join('?' for _ in source_ids)})"
        parameters += list(source_ids)
    ids = [row[0] for row in db.conn.execute(query + " ORDER BY id", parameters)]
    counts: Counter[str] = Counter()
    progress.stage("re-score themes", len(ids))
    for start in range(0, len(ids), THEMES_BATCH):
        chunk = ids[start : start + THEMES_BATCH]
        marks = ", ".join("?" for _ in chunk)
        rows = db.conn.execute(
            f"SELECT id, text FROM documents WHERE id IN ({marks}) ORDER BY id", chunk
        ).fetchall()
        texts = [(doc, text) for doc, text in rows if text.strip()]
        found = model.predict_with_terms([text for _, text in texts])
        scored = [(doc, themes) for (doc, _), themes in zip(texts, found, strict=True)]
        scored += [(doc, []) for doc, text in rows if not text.strip()]
        replace_themes(db, scored, themes_model=model.version)
        counts["documents"] += len(texts)
        counts["empty"] += len(rows) - len(texts)
        counts["themes"] += sum(len(themes) for _, themes in scored)
        progress.advance(len(rows))
    progress.done()
    return counts


Stage = Callable[..., Counter[str]]
#: The stages ``pipeline reprocess --stage`` knows, by name, with their counters in the order
#: they are reported.
STAGES: dict[str, tuple[Stage, tuple[str, ...]]] = {
    "extract": (
        reprocess_extract,
        ("changed", "updated", "unchanged", "listing", "failed", "skipped"),
    ),
    "themes": (reprocess_themes, ("documents", "themes", "empty")),
}


def reprocess(
    stage: str,
    db_path: Path,
    warc_dir: Path,
    config: SourcesConfig,
    *,
    source_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Counter[str]:
    """Run one stage under the batch lock (raises ``BatchLockedError`` if a batch runs)."""
    run_stage, _ = STAGES[stage]
    with batch_lock(Path(db_path)):
        db = open_db(db_path)
        try:
            return run_stage(db, warc_dir, config, source_ids=source_ids, progress=progress)
        finally:
            db.close()
