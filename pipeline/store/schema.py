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
    role TEXT,
    affiliation_id INTEGER REFERENCES entities(id)
);
CREATE INDEX IF NOT EXISTS mentions_document ON mentions(document_id);
CREATE INDEX IF NOT EXISTS mentions_entity ON mentions(entity_id);
CREATE INDEX IF NOT EXISTS mentions_affiliation ON mentions(affiliation_id);
CREATE INDEX IF NOT EXISTS entities_parent ON entities(parent_id);

-- Further keys that lead to an entity besides its own: spelling variants merged by fuzzy
-- matching and abbreviations a text defined. They keep a name on the entity it was first
-- linked to when documents are annotated again (pipeline/nlp/entities.py).
CREATE TABLE IF NOT EXISTS entity_keys (
    label TEXT NOT NULL,
    key TEXT NOT NULL,
    entity_id INTEGER NOT NULL REFERENCES entities(id),
    origin TEXT NOT NULL,
    PRIMARY KEY (label, key)
);
CREATE INDEX IF NOT EXISTS entity_keys_entity ON entity_keys(entity_id);

-- Entities mentioned in the same documents (entity_a < entity_b), recomputed after each batch.
CREATE TABLE IF NOT EXISTS entity_links (
    entity_a INTEGER NOT NULL REFERENCES entities(id),
    entity_b INTEGER NOT NULL REFERENCES entities(id),
    documents INTEGER NOT NULL,
    first_seen TEXT,
    last_seen TEXT,
    PRIMARY KEY (entity_a, entity_b)
);
CREATE INDEX IF NOT EXISTS entity_links_b ON entity_links(entity_b);

-- Entities whose mentions changed since the last refresh of counts, aliases and links; written
-- with the mentions, emptied by the refresh, so a batch killed in between loses nothing.
CREATE TABLE IF NOT EXISTS entities_to_refresh (
    entity_id INTEGER PRIMARY KEY REFERENCES entities(id)
);

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
SELECT entity_a, entity_b, documents FROM entity_links;

-- The roles and affiliations the texts give each person, per role and organisation.
CREATE VIEW IF NOT EXISTS person_roles AS
SELECT m.entity_id AS person_id, p.name AS person, m.role, m.affiliation_id,
       a.name AS affiliation, COUNT(*) AS mentions, COUNT(DISTINCT m.document_id) AS documents,
       MIN(COALESCE(d.published, d.first_seen)) AS first_seen,
       MAX(COALESCE(d.published, d.first_seen)) AS last_seen
FROM mentions m
JOIN entities p ON p.id = m.entity_id
JOIN documents d ON d.id = m.document_id
LEFT JOIN entities a ON a.id = m.affiliation_id
WHERE p.label = 'PER' AND (m.role IS NOT NULL OR m.affiliation_id IS NOT NULL)
GROUP BY m.entity_id, m.role, m.affiliation_id;

CREATE VIEW IF NOT EXISTS themes_by_month AS
SELECT substr(d.published, 1, 7) AS month, t.theme, COUNT(*) AS documents
FROM document_themes t JOIN documents d ON d.id = t.document_id
WHERE d.published IS NOT NULL
GROUP BY month, t.theme;

-- One row per document with its year and its themes and names as JSON arrays, so Datasette
-- can facet documents by year, theme (array facet) and organisation without any SQL.
CREATE VIEW IF NOT EXISTS document_overview AS
SELECT d.id, d.published, substr(d.published, 1, 4) AS year, d.title, d.source_id, d.kind,
       (SELECT json_group_array(theme) FROM (SELECT t.theme FROM document_themes t
         WHERE t.document_id = d.id ORDER BY t.score DESC)) AS themes,
       (SELECT json_group_array(name) FROM (SELECT DISTINCT e.name FROM mentions m
         JOIN entities e ON e.id = m.entity_id
         WHERE m.document_id = d.id AND e.label = 'ORG' ORDER BY e.name)) AS organisations,
       (SELECT json_group_array(name) FROM (SELECT DISTINCT e.name FROM mentions m
         JOIN entities e ON e.id = m.entity_id
         WHERE m.document_id = d.id AND e.label = 'PER' ORDER BY e.name)) AS people,
       (SELECT json_group_array(name) FROM (SELECT DISTINCT e.name FROM mentions m
         JOIN entities e ON e.id = m.entity_id
         WHERE m.document_id = d.id AND e.label = 'LOC' ORDER BY e.name)) AS places,
       d.author, d.url
FROM documents d;

-- Places with coordinates, for the map; the popup column is what datasette-cluster-map shows
-- (its link is relative, so it works whatever the database is called).
CREATE VIEW IF NOT EXISTS places AS
SELECT e.id, e.name, e.municipality, e.latitude, e.longitude, e.document_count,
       e.mention_count,
       json_object('title', e.name, 'description', e.document_count || ' dokument',
                   'link', 'entities/' || e.id) AS popup
FROM entities e
WHERE e.label = 'LOC' AND e.latitude IS NOT NULL AND e.longitude IS NOT NULL
  AND e.document_count > 0;
"""

FTS_TOKENIZE = "unicode61 remove_diacritics 0"
"""Keep å, ä and ö distinct: the default tokenizer folds them, so "får" would match "far"."""
