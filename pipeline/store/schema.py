"""The SQLite schema, written out as SQL so that foreign keys, indexes and views are explicit.

Every table is created with ``IF NOT EXISTS`` so opening an existing database is a no-op; the
schema version is kept in ``PRAGMA user_version`` for future migrations.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

TABLES = """
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    hosts TEXT NOT NULL,
    recrawl_seconds INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    pid INTEGER,
    sources TEXT,
    discovered INTEGER NOT NULL DEFAULT 0,
    fetched INTEGER NOT NULL DEFAULT 0,
    not_modified INTEGER NOT NULL DEFAULT 0,
    new INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    duplicate INTEGER NOT NULL DEFAULT 0,
    gone INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    annotated INTEGER NOT NULL DEFAULT 0,
    duration_seconds REAL,
    message TEXT
);

CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id),
    role TEXT NOT NULL,
    fetch_url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    lastmod TEXT,
    content_hash TEXT,
    first_seen TEXT NOT NULL,
    last_fetched TEXT,
    last_status INTEGER,
    next_fetch TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    gone_since TEXT
);
CREATE INDEX IF NOT EXISTS pages_source_next ON pages(source_id, next_fetch);

CREATE TABLE IF NOT EXISTS fetches (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    url TEXT NOT NULL,
    final_url TEXT,
    status INTEGER,
    error TEXT,
    fetched_at TEXT NOT NULL,
    elapsed REAL,
    bytes INTEGER,
    content_type TEXT,
    warc_file TEXT,
    warc_offset INTEGER,
    warc_length INTEGER
);
CREATE INDEX IF NOT EXISTS fetches_run ON fetches(run_id);
CREATE INDEX IF NOT EXISTS fetches_url ON fetches(url);

CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE REFERENCES pages(url),
    source_id TEXT NOT NULL REFERENCES sources(id),
    kind TEXT NOT NULL,
    title TEXT,
    published TEXT,
    date_precision TEXT,
    date_kind TEXT,
    author TEXT,
    language TEXT,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    first_seen TEXT NOT NULL,
    updated TEXT NOT NULL,
    fetch_id INTEGER REFERENCES fetches(id),
    annotated_hash TEXT,
    ner_model TEXT,
    themes_model TEXT
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source_id);
CREATE INDEX IF NOT EXISTS documents_published ON documents(published);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);

CREATE TABLE IF NOT EXISTS document_versions (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    version INTEGER NOT NULL,
    title TEXT,
    published TEXT,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    seen TEXT NOT NULL,
    fetch_id INTEGER REFERENCES fetches(id),
    UNIQUE (document_id, version)
);

CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    name TEXT NOT NULL,
    role TEXT,
    organisation TEXT,
    email TEXT,
    phone TEXT
);
CREATE INDEX IF NOT EXISTS contacts_document ON contacts(document_id);

CREATE TABLE IF NOT EXISTS entities (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    aliases TEXT,
    parent_id INTEGER REFERENCES entities(id),
    latitude REAL,
    longitude REAL,
    municipality TEXT,
    mention_count INTEGER NOT NULL DEFAULT 0,
    document_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (label, key)
);

CREATE TABLE IF NOT EXISTS mentions (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    entity_id INTEGER NOT NULL REFERENCES entities(id),
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    label TEXT NOT NULL,
    sentence TEXT,
    role TEXT
);
CREATE INDEX IF NOT EXISTS mentions_document ON mentions(document_id);
CREATE INDEX IF NOT EXISTS mentions_entity ON mentions(entity_id);

CREATE TABLE IF NOT EXISTS themes (
    slug TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    description TEXT
);

CREATE TABLE IF NOT EXISTS document_themes (
    document_id INTEGER NOT NULL REFERENCES documents(id),
    theme TEXT NOT NULL REFERENCES themes(slug),
    score REAL NOT NULL,
    model_version TEXT NOT NULL,
    terms TEXT,
    PRIMARY KEY (document_id, theme)
);
CREATE INDEX IF NOT EXISTS document_themes_theme ON document_themes(theme);
"""

VIEWS = """
CREATE VIEW IF NOT EXISTS entity_cooccurrence AS
SELECT a.entity_id AS entity_a, b.entity_id AS entity_b,
       COUNT(DISTINCT a.document_id) AS documents
FROM (SELECT DISTINCT document_id, entity_id FROM mentions) a
JOIN (SELECT DISTINCT document_id, entity_id FROM mentions) b
  ON a.document_id = b.document_id AND a.entity_id < b.entity_id
GROUP BY a.entity_id, b.entity_id;

CREATE VIEW IF NOT EXISTS themes_by_month AS
SELECT substr(d.published, 1, 7) AS month, t.theme, COUNT(*) AS documents
FROM document_themes t JOIN documents d ON d.id = t.document_id
WHERE d.published IS NOT NULL
GROUP BY month, t.theme;
"""

FTS_TOKENIZE = "unicode61 remove_diacritics 0"
"""Keep å, ä and ö distinct: the default tokenizer folds them, so "får" would match "far"."""
