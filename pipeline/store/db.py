"""Reading and writing the pipeline's SQLite database.

Each function does one unit of work inside one transaction, so a batch killed at any point
leaves the database consistent: a document is either stored with its version row and contacts,
or not at all; a document's annotations are replaced in one go and only then marked as done.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlite_utils

from pipeline.store.schema import FTS_TOKENIZE, SCHEMA_VERSION, TABLES, VIEWS


def utcnow() -> str:
    """The current time as an ISO 8601 UTC string with seconds, the format used in every table."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def content_hash(text: str) -> str:
    """Hash of a document's text with whitespace folded, so re-wrapped HTML is not a change."""
    normalised = re.sub(r"\s+", " ", text).strip()
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (and if needed create) the database with WAL, foreign keys and the full schema."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        # executescript() commits whatever is open, so the transaction is part of the script.
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{TABLES}\n{VIEWS}\nPRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;"
        )
    if not db["documents"].detect_fts():
        db["documents"].enable_fts(["title", "text"], tokenize=FTS_TOKENIZE, create_triggers=True)
    return db


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception.

    The connection is in autocommit mode, and sqlite-utils' own write methods commit on their
    own, so only plain ``conn.execute`` calls belong inside this block.
    """
    conn = db.conn
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --------------------------------------------------------------------------- reference tables


def sync_sources(db: sqlite_utils.Database, sources: Iterable[Any]) -> None:
    """Upsert the configured sources so pages and documents can point at them."""
    rows = [(s.id, s.name, s.kind, ", ".join(s.hosts), s.recrawl_seconds) for s in sources]
    with transaction(db) as conn:
        conn.executemany(
            "INSERT INTO sources (id, name, kind, hosts, recrawl_seconds) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind,"
            " hosts = excluded.hosts, recrawl_seconds = excluded.recrawl_seconds",
            rows,
        )


def sync_themes(db: sqlite_utils.Database, themes: Iterable[Any]) -> None:
    """Upsert the theme taxonomy (slug, label, and its definition as the description)."""
    rows = [(t.slug, t.label, t.definition) for t in themes]
    with transaction(db) as conn:
        conn.executemany(
            "INSERT INTO themes (slug, label, description) VALUES (?, ?, ?)"
            " ON CONFLICT (slug) DO UPDATE SET label = excluded.label,"
            " description = excluded.description",
            rows,
        )


# --------------------------------------------------------------------------- runs


RUN_COUNTERS = (
    "discovered",
    "fetched",
    "not_modified",
    "new",
    "changed",
    "unchanged",
    "duplicate",
    "gone",
    "failed",
    "annotated",
)


def start_run(db: sqlite_utils.Database, source_ids: Sequence[str], pid: int) -> int:
    """Insert a 'running' ``runs`` row; runs left 'running' by a killed batch are closed."""
    with transaction(db) as conn:
        conn.execute(
            "UPDATE runs SET status = 'interrupted', message = 'the process stopped before the end'"
            " WHERE status = 'running'"
        )
        cursor = conn.execute(
            "INSERT INTO runs (started, status, pid, sources) VALUES (?, 'running', ?, ?)",
            (utcnow(), pid, ", ".join(source_ids)),
        )
        return int(cursor.lastrowid)


def finish_run(
    db: sqlite_utils.Database,
    run_id: int,
    counts: dict[str, int],
    *,
    status: str,
    duration: float,
    message: str | None = None,
) -> None:
    """Close a run with its counters, status ('completed', 'failed', …) and duration."""
    values = {key: int(counts.get(key, 0)) for key in RUN_COUNTERS}
    values.update(
        finished=utcnow(), status=status, duration_seconds=round(duration, 3), message=message
    )
    db["runs"].update(run_id, values)


# --------------------------------------------------------------------------- fetch log


def log_fetch(db: sqlite_utils.Database, run_id: int, result: Any, warc: Any | None = None) -> int:
    """Record one HTTP exchange (or its failure) and where its raw bytes live in the WARC files."""
    row = {
        "run_id": run_id,
        "url": result.url,
        "final_url": result.final_url,
        "status": result.status,
        "error": result.error,
        "fetched_at": result.fetched_at,
        "elapsed": round(result.elapsed, 4),
        "bytes": len(result.body or b""),
        "content_type": result.content_type,
        "warc_file": warc.filename if warc else None,
        "warc_offset": warc.offset if warc else None,
        "warc_length": warc.length if warc else None,
    }
    with transaction(db) as conn:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cursor = conn.execute(
            f"INSERT INTO fetches ({columns}) VALUES ({marks})", tuple(row.values())
        )
        return int(cursor.lastrowid)


def set_fetch_error(db: sqlite_utils.Database, fetch_id: int, error: str) -> None:
    """Attach a per-page error found after fetching (for example, nothing extractable)."""
    with transaction(db) as conn:
        conn.execute("UPDATE fetches SET error = ? WHERE id = ?", (error, fetch_id))


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class SavedDocument:
    """What storing an extracted page did: 'new', 'changed', 'unchanged' or 'duplicate'."""

    outcome: str
    document_id: int | None


def save_document(
    db: sqlite_utils.Database,
    *,
    url: str,
    source_id: str,
    kind: str,
    extracted: Any,
    fetch_id: int | None,
) -> SavedDocument:
    """Insert or update one document, keeping every text version and de-duplicating mirrors.

    The same text reached through another URL (a mirror, a tracking link that slipped through)
    is recorded as a 'duplicate' of the first document rather than stored twice.
    """
    digest = content_hash(extracted.text)
    now = utcnow()
    with transaction(db) as conn:
        existing = conn.execute(
            "SELECT id, content_hash, version FROM documents WHERE url = ?", (url,)
        ).fetchone()
        if existing is None:
            twin = conn.execute(
                "SELECT id FROM documents WHERE content_hash = ? AND url != ?", (digest, url)
            ).fetchone()
            if twin is not None:
                return SavedDocument("duplicate", int(twin[0]))
        fields = {
            "title": extracted.title,
            "published": extracted.published,
            "date_precision": extracted.date_precision,
            "date_kind": extracted.date_kind,
            "author": extracted.author,
            "language": extracted.language,
            "kind": extracted.kind or kind,
            "text": extracted.text,
            "content_hash": digest,
            "updated": now,
            "fetch_id": fetch_id,
        }
        if existing is None:
            fields.update(url=url, source_id=source_id, first_seen=now, version=1)
            columns = ", ".join(f'"{c}"' for c in fields)
            marks = ", ".join("?" for _ in fields)
            cursor = conn.execute(
                f"INSERT INTO documents ({columns}) VALUES ({marks})", tuple(fields.values())
            )
            document_id, version, outcome = int(cursor.lastrowid), 1, "new"
        elif existing[1] == digest:
            return SavedDocument("unchanged", int(existing[0]))
        else:
            document_id, version, outcome = int(existing[0]), int(existing[2]) + 1, "changed"
            fields["version"] = version
            assignments = ", ".join(f'"{c}" = ?' for c in fields)
            conn.execute(
                f"UPDATE documents SET {assignments} WHERE id = ?",
                (*fields.values(), document_id),
            )
        conn.execute(
            "INSERT INTO document_versions"
            " (document_id, version, title, published, text, content_hash, seen, fetch_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                document_id,
                version,
                extracted.title,
                extracted.published,
                extracted.text,
                digest,
                now,
                fetch_id,
            ),
        )
        conn.execute("DELETE FROM contacts WHERE document_id = ?", (document_id,))
        conn.executemany(
            "INSERT INTO contacts (document_id, name, role, organisation, email, phone)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            # The table holds people: a switchboard entry without a name ("Kundtjänst,
            # 08-…") would break its NOT NULL name and, with it, the whole batch.
            [
                (document_id, c.name, c.role, c.organisation, c.email, c.phone)
                for c in extracted.contacts
                if c.name
            ],
        )
    return SavedDocument(outcome, document_id)


_METADATA_COLUMNS = ("title", "published", "date_precision", "date_kind", "author", "language")


def refresh_metadata(
    db: sqlite_utils.Database, document_id: int, *, kind: str, extracted: Any
) -> bool:
    """Bring a document's title, date, author, language, kind and contacts up to date when a
    re-extraction gives the same text; return whether anything changed.

    The text and its versions are not touched, so the document stays annotated: a better date
    or byline rule must not cost a new version and a new annotation run.
    """
    wanted = {column: getattr(extracted, column) for column in _METADATA_COLUMNS}
    wanted["kind"] = extracted.kind or kind
    people = [
        (c.name, c.role, c.organisation, c.email, c.phone) for c in extracted.contacts if c.name
    ]
    with transaction(db) as conn:
        columns = ", ".join(f'"{c}"' for c in wanted)
        stored = conn.execute(
            f"SELECT {columns} FROM documents WHERE id = ?", (document_id,)
        ).fetchone()
        stored_people = conn.execute(
            "SELECT name, role, organisation, email, phone FROM contacts"
            " WHERE document_id = ? ORDER BY id",
            (document_id,),
        ).fetchall()
        if tuple(stored) == tuple(wanted.values()) and stored_people == people:
            return False
        assignments = ", ".join(f'"{c}" = ?' for c in wanted)
        conn.execute(
            f'UPDATE documents SET {assignments}, "updated" = ? WHERE id = ?',
            (*wanted.values(), utcnow(), document_id),
        )
        conn.execute("DELETE FROM contacts WHERE document_id = ?", (document_id,))
        conn.executemany(
            "INSERT INTO contacts (document_id, name, role, organisation, email, phone)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(document_id, *person) for person in people],
        )
    return True


# --------------------------------------------------------------------------- annotations


@dataclass(frozen=True)
class PendingDocument:
    """A document whose current text has not been annotated by the current models."""

    id: int
    text: str
    language: str | None
    content_hash: str


_PENDING = (
    "(annotated_hash IS NULL OR annotated_hash != content_hash"
    " OR ner_model IS NOT ? OR themes_model IS NOT ?)"
)


def pending_annotation(
    db: sqlite_utils.Database,
    ner_model: str,
    themes_model: str,
    limit: int = 10_000,
    *,
    after_id: int = 0,
) -> list[PendingDocument]:
    """Documents whose text or models changed since they were last annotated, by id.

    ``after_id`` continues after the last document of a previous call, so that a large backlog
    is read a chunk at a time instead of all texts at once.
    """
    rows = db.conn.execute(
        f"SELECT id, text, language, content_hash FROM documents WHERE id > ? AND {_PENDING}"
        " ORDER BY id LIMIT ?",
        (after_id, ner_model, themes_model, limit),
    ).fetchall()
    return [PendingDocument(*row) for row in rows]


def count_pending_annotation(db: sqlite_utils.Database, ner_model: str, themes_model: str) -> int:
    """How many documents :func:`pending_annotation` would return without a limit."""
    query = f"SELECT COUNT(*) FROM documents WHERE {_PENDING}"
    return int(db.conn.execute(query, (ner_model, themes_model)).fetchone()[0])


def save_annotations(
    db: sqlite_utils.Database,
    document: PendingDocument,
    entities: Sequence[Any],
    themes: Sequence[tuple[str, float, Sequence[str]]],
    *,
    ner_model: str,
    themes_model: str,
) -> None:
    """Replace a document's mentions and themes, and mark it annotated for its current hash.

    ``entities`` are linked mentions from the annotator, or plain spans (start, end, label,
    text), which are linked here. Either way each mention is stored under its canonical entity
    (pipeline/nlp/entities.py), with roles from the document's contact block filled in.
    """
    from pipeline.nlp.entities import EntityStore
    from pipeline.nlp.linking import LinkedMention, apply_contacts, default_linker

    contacts = [
        SimpleNamespace(name=name, role=role, organisation=organisation)
        for name, role, organisation in db.conn.execute(
            "SELECT name, role, organisation FROM contacts WHERE document_id = ? ORDER BY id",
            (document.id,),
        )
    ]
    if not entities:
        mentions = []
    elif all(isinstance(entity, LinkedMention) for entity in entities):
        # Without contacts there is nothing to apply, and no reason to build the linker (its
        # place index costs seconds and memory) in a process that only writes.
        linker = default_linker() if contacts else None
        mentions = apply_contacts(list(entities), contacts, linker) if linker else list(entities)
    else:
        mentions = default_linker().link(document.text, entities, contacts)
    with transaction(db) as conn:
        conn.execute("DELETE FROM document_themes WHERE document_id = ?", (document.id,))
        EntityStore(conn).replace_mentions(document.id, mentions)
        conn.executemany(
            "INSERT INTO document_themes (document_id, theme, score, model_version, terms)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (document.id, slug, round(score, 4), themes_model, json.dumps(list(terms)))
                for slug, score, terms in themes
            ],
        )
        conn.execute(
            "UPDATE documents SET annotated_hash = ?, ner_model = ?, themes_model = ?"
            " WHERE id = ? AND content_hash = ?",
            (document.content_hash, ner_model, themes_model, document.id, document.content_hash),
        )


def replace_themes(
    db: sqlite_utils.Database,
    scored: Sequence[tuple[int, Sequence[tuple[str, float, Sequence[str]]]]],
    *,
    themes_model: str,
) -> None:
    """Replace the themes of several documents in one transaction, leaving their mentions alone.

    ``scored`` holds (document id, [(slug, score, terms)]). This is the write of
    ``pipeline reprocess --stage themes`` after the theme model was retrained: the documents are
    marked as scored by ``themes_model``, so the next batch does not annotate them again only
    for that; a document whose text changed since its annotation stays pending by its hash.
    """
    with transaction(db) as conn:
        for document_id, themes in scored:
            conn.execute("DELETE FROM document_themes WHERE document_id = ?", (document_id,))
            conn.executemany(
                "INSERT INTO document_themes (document_id, theme, score, model_version, terms)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (document_id, slug, round(score, 4), themes_model, json.dumps(list(terms)))
                    for slug, score, terms in themes
                ],
            )
            conn.execute(
                "UPDATE documents SET themes_model = ? WHERE id = ?", (themes_model, document_id)
            )


def refresh_entity_counts(db: sqlite_utils.Database, *, everything: bool = False) -> None:
    """Recompute counts, names, aliases and ``entity_links`` for the entities whose mentions
    changed since the last refresh (or for all of them with ``everything``).

    Entities that lost all their mentions are kept with zero counts so that their ids stay stable
    when a later version of a document mentions them again.
    """
    from pipeline.nlp.entities import EntityStore

    with transaction(db) as conn:
        EntityStore(conn).refresh(everything=everything)
