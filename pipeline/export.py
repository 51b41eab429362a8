"""Documents as JSON lines: one self-contained record per document, with names and themes.

For analysts who continue in pandas, R or another tool: each line has the document's fields,
its entity mentions (offsets into ``text``, as ``pipeline annotate-text`` prints them, plus the
entity's canonical name) and its themes with scores. The database is opened read-only, so an
export can run while a batch is writing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

DOCUMENT_FIELDS = "id, url, source_id, kind, title, published, author, text"


def iter_documents(db_path: Path) -> Iterator[dict[str, Any]]:
    """Every document, oldest id first, as the dictionary written on one line."""
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        for row in conn.execute(f"SELECT {DOCUMENT_FIELDS} FROM documents ORDER BY id"):
            yield _record(conn, row)
    finally:
        conn.close()


def _record(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    names = ["source" if name == "source_id" else name for name in row.keys()]  # noqa: SIM118
    record = dict(zip(names, row, strict=True))
    mentions = conn.execute(
        'SELECT m.start, m."end", m.label, m.text, e.name FROM mentions m'
        " JOIN entities e ON e.id = m.entity_id WHERE m.document_id = ? ORDER BY m.start",
        (row["id"],),
    )
    record["entities"] = [
        {"start": start, "end": end, "label": label, "text": text, "entity": name}
        for start, end, label, text, name in mentions
    ]
    themes = conn.execute(
        "SELECT theme, score FROM document_themes WHERE document_id = ? ORDER BY score DESC, theme",
        (row["id"],),
    )
    record["themes"] = [{"theme": theme, "score": score} for theme, score in themes]
    return record


def export_documents(db_path: Path, out: TextIO) -> int:
    """Write one JSON line per document to ``out``; return how many were written."""
    count = 0
    for record in iter_documents(db_path):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
