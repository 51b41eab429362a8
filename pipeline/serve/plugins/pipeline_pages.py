"""Datasette plugin for the pipeline database: readable pages and the SQL functions they use.

Loaded with ``--plugins-dir`` by ``pipeline serve`` and copied by ``pipeline publish``, so it
imports nothing from the ``pipeline`` package: a published directory needs only Datasette.

* The database is always served as ``/pipeline``, whatever its file is called, so that the
  metadata, the canned queries and the templates named after it always apply.
* SQL functions for the canned queries: ``fts_query`` (search words as prefixes, so "hemlös"
  finds "hemlösheten"), ``casefold`` (SQLite's ``lower`` leaves Å, Ä and Ö alone) and
  ``text_diff`` (paragraphs removed and added between two versions of a text).
* Template variables for the home page (counts, last update) and for the document and entity
  pages (paragraphs with the names marked, entities, themes with scores, documents).
* Highlighted search snippets and coloured diffs in the HTML tables.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from datasette import hookimpl
from markupsafe import Markup, escape

DATABASE = "pipeline"
LABELS = {"ORG": "Organisationer", "PER": "Personer", "LOC": "Platser"}
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
QUERY_TERM = re.compile(r'"([^"]*)"|(\w+)')


# --------------------------------------------------------------------------- database name


@hookimpl
def startup(datasette: Any) -> None:
    """Serve a lone database under the name the metadata uses, whatever its file name."""
    names = [name for name in datasette.databases if name != "_internal"]
    if len(names) == 1 and names[0] != DATABASE:
        database = datasette.databases[names[0]]
        datasette.remove_database(names[0])
        datasette.add_database(database, name=DATABASE)


# --------------------------------------------------------------------------- SQL functions


def fts_query(text: str | None) -> str:
    """A safe FTS5 query from what a user typed: every word a prefix, "quoted phrases" kept.

    Swedish inflects and compounds by adding to the end of a word, so a prefix finds the
    forms an analyst means ("hemlös" → hemlösa, hemlösheten). ``OR`` between two terms is kept.
    An empty query becomes an empty phrase, which matches nothing instead of failing.
    """
    terms: list[str] = []
    for phrase, word in QUERY_TERM.findall(text or ""):
        if word == "OR":
            if terms and terms[-1] != "OR":
                terms.append("OR")
        elif phrase.strip():
            terms.append('"' + phrase.strip() + '"')
        elif word:
            terms.append(f'"{word}"*')
    while terms and terms[-1] == "OR":
        terms.pop()
    return " ".join(terms) or '""'


def casefold(text: str | None) -> str | None:
    """Unicode case folding for comparisons; SQLite's ``lower`` only knows ASCII."""
    return text.casefold() if isinstance(text, str) else text


def paragraphs_of(text: str) -> list[str]:
    return [text[start:end] for start, end in paragraph_spans(text)]


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Start and end offsets of the paragraphs (text between blank lines), blanks trimmed."""
    spans, start = [], 0
    for gap in [*PARAGRAPH_BREAK.finditer(text), None]:
        end = gap.start() if gap else len(text)
        chunk = text[start:end]
        if chunk.strip():
            lead = len(chunk) - len(chunk.lstrip())
            spans.append((start + lead, start + len(chunk.rstrip())))
        start = gap.end() if gap else end
    return spans


def text_diff(old: str | None, new: str | None) -> str | None:
    """Paragraphs removed ("- ") and added ("+ ") from ``old`` to ``new``; None for a first text."""
    if old is None or new is None:
        return None
    before, after = paragraphs_of(old), paragraphs_of(new)
    lines: list[str] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        lines += [f"- {p}" for p in before[a1:a2]]
        lines += [f"+ {p}" for p in after[b1:b2]]
    return "\n".join(lines)


@hookimpl
def prepare_connection(conn: Any) -> None:
    conn.create_function("fts_query", 1, fts_query, deterministic=True)
    conn.create_function("casefold", 1, casefold, deterministic=True)
    conn.create_function("text_diff", 2, text_diff, deterministic=True)


# --------------------------------------------------------------------------- cells


@hookimpl
def render_cell(value: Any, column: str, table: str | None, database: str) -> Markup | None:
    """Search snippets with their <mark> kept, and diffs with removed and added paragraphs."""
    if database != DATABASE or table is not None or not isinstance(value, str):
        return None
    if column == "snippet":
        escaped = str(escape(value))
        return Markup(escaped.replace("&lt;mark&gt;", "<mark>").replace("&lt;/mark&gt;", "</mark>"))
    if column == "changes":
        return Markup("").join(_diff_line(line) for line in value.splitlines())
    return None


def _diff_line(line: str) -> Markup:
    if line.startswith("+"):
        return Markup('<div class="diff-added"><ins>{}</ins></div>').format(line)
    return Markup('<div class="diff-removed"><del>{}</del></div>').format(line)


# --------------------------------------------------------------------------- page data


@hookimpl
def extra_template_vars(
    view_name: str, database: str | None, table: str | None, request: Any, datasette: Any
):
    """Data for the home page and for the document and entity pages."""
    if view_name == "index":
        return _home(datasette, request)
    if view_name == "row" and database == DATABASE and table in ("documents", "entities"):
        key = request.url_vars["pks"]
        return _document(datasette, key) if table == "documents" else _entity(datasette, key)
    return {}


async def _rows(datasette: Any, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    result = await datasette.get_database(DATABASE).execute(sql, params)
    return [dict(row) for row in result.rows]


def _home(datasette: Any, request: Any):
    async def home() -> dict[str, Any]:
        if DATABASE not in datasette.databases:
            return {}
        totals = (
            await _rows(
                datasette,
                "SELECT (SELECT COUNT(*) FROM documents) AS documents,"
                " (SELECT COUNT(*) FROM sources) AS sources,"
                " (SELECT COUNT(*) FROM document_versions) AS versions,"
                " (SELECT COUNT(DISTINCT document_id) FROM document_themes) AS themed,"
                " (SELECT MIN(published) FROM documents) AS first_published,"
                " (SELECT MAX(published) FROM documents) AS last_published",
            )
        )[0]
        entities = await _rows(
            datasette,
            "SELECT label, COUNT(*) AS n FROM entities WHERE document_count > 0"
            " GROUP BY label ORDER BY n DESC",
        )
        last_run = await _rows(
            datasette,
            "SELECT id, started, finished, new, changed, gone, failed FROM runs"
            " WHERE status = 'completed' ORDER BY id DESC LIMIT 1",
        )
        queries = await datasette.get_canned_queries(DATABASE, request.actor)
        return {
            "totals": totals,
            "entity_counts": [
                {**row, "name": LABELS.get(row["label"], row["label"])} for row in entities
            ],
            "last_run": last_run[0] if last_run else None,
            "canned_queries": list(queries.values()),
        }

    return home


def _document(datasette: Any, key: str):
    async def document() -> dict[str, Any]:
        found = await _rows(
            datasette,
            "SELECT d.*, s.name AS source_name FROM documents d"
            " LEFT JOIN sources s ON s.id = d.source_id WHERE d.id = ?",
            [key],
        )
        if not found:
            return {}
        doc = found[0]
        mentions = await _rows(
            datasette,
            'SELECT m.start, m."end", m.text, m.label, m.entity_id, e.name FROM mentions m'
            " JOIN entities e ON e.id = m.entity_id WHERE m.document_id = ? ORDER BY m.start",
            [doc["id"]],
        )
        themes = await _rows(
            datasette,
            "SELECT t.theme, COALESCE(th.label, t.theme) AS label, t.score, t.terms"
            " FROM document_themes t LEFT JOIN themes th ON th.slug = t.theme"
            " WHERE t.document_id = ? ORDER BY t.score DESC",
            [doc["id"]],
        )
        for theme in themes:
            theme["terms"] = _json_list(theme["terms"])
            theme["percent"] = round(100 * float(theme["score"]))
        return {
            "doc": doc,
            "paragraphs": mark_paragraphs(doc["text"], mentions),
            "entity_groups": group_entities(mentions),
            "doc_themes": themes,
            "contacts": await _rows(
                datasette,
                "SELECT name, role, organisation, email, phone FROM contacts"
                " WHERE document_id = ? ORDER BY id",
                [doc["id"]],
            ),
            "versions": await _rows(
                datasette,
                "SELECT version, seen, title, content_hash FROM document_versions"
                " WHERE document_id = ? ORDER BY version DESC",
                [doc["id"]],
            ),
        }

    return document


def mark_paragraphs(text: str, mentions: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The text as paragraphs of segments, each segment plain or a mention of an entity.

    Mentions whose offsets no longer fit the text (a new version not yet annotated) are left
    out rather than marking the wrong words.
    """
    paragraphs: list[list[dict[str, Any]]] = []
    valid = [m for m in mentions if text[m["start"] : m["end"]] == m["text"]]
    for start, end in paragraph_spans(text):
        segments: list[dict[str, Any]] = []
        cursor = start
        for mention in valid:
            if mention["start"] < cursor or mention["end"] > end:
                continue
            if mention["start"] > cursor:
                segments.append({"text": text[cursor : mention["start"]]})
            segments.append({key: mention[key] for key in ("text", "entity_id", "label")})
            cursor = mention["end"]
        if cursor < end:
            segments.append({"text": text[cursor:end]})
        paragraphs.append(segments)
    return paragraphs


def group_entities(mentions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The document's entities by label, each with how often this document mentions it."""
    counts: dict[tuple[str, int], dict[str, Any]] = {}
    for mention in mentions:
        entry = counts.setdefault(
            (mention["label"], mention["entity_id"]),
            {"id": mention["entity_id"], "name": mention["name"], "count": 0},
        )
        entry["count"] += 1
    groups = []
    order = [*LABELS, *sorted({label for label, _ in counts} - set(LABELS))]
    for label in [label for label in order if any(lab == label for lab, _ in counts)]:
        members = [entry for (lab, _), entry in counts.items() if lab == label]
        members.sort(key=lambda e: (-e["count"], e["name"]))
        groups.append({"label": label, "name": LABELS.get(label, label), "entities": members})
    return groups


def _json_list(value: str | None) -> list[str]:
    try:
        parsed = json.loads(value or "[]")
    except ValueError:
        return []
    return [str(item) for item in parsed] if isinstance(parsed, list) else []


def _entity(datasette: Any, key: str):
    async def entity() -> dict[str, Any]:
        found = await _rows(
            datasette,
            "SELECT e.*, p.name AS parent_name FROM entities e"
            " LEFT JOIN entities p ON p.id = e.parent_id WHERE e.id = ?",
            [key],
        )
        if not found:
            return {}
        ent = found[0]
        ent["alias_list"] = _aliases(ent.get("aliases"))
        documents = await _rows(
            datasette,
            "SELECT d.id, d.title, d.published, d.source_id, COUNT(*) AS mentions"
            " FROM mentions m JOIN documents d ON d.id = m.document_id WHERE m.entity_id = ?"
            " GROUP BY d.id ORDER BY d.published DESC, d.id DESC LIMIT 500",
            [ent["id"]],
        )
        related = await _rows(
            datasette,
            "SELECT e.id, e.name, e.label, COUNT(DISTINCT m.document_id) AS documents"
            " FROM mentions m JOIN entities e ON e.id = m.entity_id"
            " WHERE m.document_id IN (SELECT document_id FROM mentions WHERE entity_id = ?)"
            " AND m.entity_id != ? GROUP BY e.id ORDER BY documents DESC, e.name LIMIT 20",
            [ent["id"], ent["id"]],
        )
        roles = await _rows(
            datasette,
            "SELECT role, affiliation_id, affiliation, documents FROM person_roles"
            " WHERE person_id = ? ORDER BY documents DESC, mentions DESC LIMIT 10",
            [ent["id"]],
        )
        people = await _rows(
            datasette,
            "SELECT person_id, person, role, documents FROM person_roles"
            " WHERE affiliation_id = ? ORDER BY documents DESC, person",
            [ent["id"]],
        )
        return {
            "entity": ent,
            "entity_label": LABELS.get(ent["label"], ent["label"]),
            "entity_documents": documents,
            "related": related,
            "roles": roles,
            "people": people_with_roles(people),
            "children": await _rows(
                datasette,
                "SELECT id, name FROM entities WHERE parent_id = ? ORDER BY name",
                [ent["id"]],
            ),
        }

    return entity


def people_with_roles(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per person, most documents first, with the distinct roles the texts give."""
    people: dict[int, dict[str, Any]] = {}
    for row in rows:
        person = people.setdefault(
            row["person_id"], {"person_id": row["person_id"], "person": row["person"], "roles": []}
        )
        if row["role"] and row["role"] not in person["roles"]:
            person["roles"].append(row["role"])
    return list(people.values())


def _aliases(value: str | None) -> list[str]:
    """Aliases as stored: a JSON list, or names separated by semicolons or line breaks."""
    if not value:
        return []
    listed = _json_list(value) if value.lstrip().startswith("[") else []
    return listed or [a.strip() for a in re.split(r"[;\n|]", value) if a.strip()]
