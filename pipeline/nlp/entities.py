"""Canonical entities across documents: stable ids, merged spellings, aliases, counts and links.

:mod:`pipeline.nlp.linking` decides what each mention means inside its document. This module
writes the result and ties it to what earlier documents said, inside the caller's transaction:

* **Stable ids.** An entity's id is derived from its label and key (a hash, 53 bits so that
  JavaScript in Datasette reads it exactly), not from the order documents arrive in. Annotating
  the same documents again, or into a fresh database, gives the same ids; entities are never
  deleted, so an id stays valid when its last mention goes away.
* **Names from the texts** (organisations and people outside the gazetteer) are matched against
  the entities already stored: exactly, through keys learnt earlier (an abbreviation a text
  defined), or by the same token-wise fuzzy match the linker uses against the gazetteer. A merged
  spelling is remembered in ``entity_keys`` so it keeps its entity from then on.
* **Refresh** after a batch, for the entities whose mentions changed (queued in
  ``entities_to_refresh`` together with the mentions): mention and document counts, names and
  the ``aliases`` column (gazetteer names plus the spellings the texts used), and
  ``entity_links``, the co-occurrence of entities in documents with first and last date.
* **Relinking** (:func:`relink`) links the stored mentions again after a gazetteer edit, without
  the NER model; **evaluation** (:func:`evaluate_linking`) scores grouping and geocoding on a
  hand-labelled set.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pipeline.nlp.gazetteer import Gazetteer, default_gazetteer
from pipeline.nlp.linking import (
    DIRECTION,
    FUZZY_THRESHOLD,
    EntityRef,
    LinkedMention,
    Linker,
    clean_form,
    default_linker,
    text_key,
    token_similarity,
)
from pipeline.nlp.places import distance_km
from pipeline.nlp.scoring import precision_recall_f1

ID_SPACE = 2**53 - 1
"""Ids stay below 2**53: Datasette's JSON is read by JavaScript, whose numbers are doubles."""

FUZZY_LABELS = frozenset({"ORG", "PER"})
"""Places are never fuzzy-matched: "Mora" and "Nora" are two towns, not a typo."""

CURATED_KEY = re.compile(r"^[a-z]+:")
"""Keys of gazetteer organisations and places ("org:boverket", "district:malmö-rosengård")."""


def stable_id(label: str, key: str) -> int:
    """The id an entity gets unless another entity already has it (then the next free one)."""
    digest = hashlib.sha256(f"{label}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % ID_SPACE + 1


class EntityStore:
    """Finds or creates entity rows for linked mentions, on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection, *, fuzzy_threshold: float = FUZZY_THRESHOLD):
        self.conn = conn
        self.fuzzy_threshold = fuzzy_threshold

    # ------------------------------------------------------------------ writing mentions

    def replace_mentions(self, document_id: int, mentions: Sequence[LinkedMention]) -> list[int]:
        """A document's mentions replaced by ``mentions``; the entities of both are queued for
        the next refresh. Returns the entity id of each new mention."""
        self._queue("SELECT DISTINCT entity_id FROM mentions WHERE document_id = ?", (document_id,))
        self.conn.execute("DELETE FROM mentions WHERE document_id = ?", (document_id,))
        ids = self.save_mentions(document_id, mentions)
        self.conn.executemany(
            "INSERT INTO entities_to_refresh (entity_id) VALUES (?) ON CONFLICT DO NOTHING",
            [(entity_id,) for entity_id in set(ids)],
        )
        return ids

    def _queue(self, sql: str, params: tuple = ()) -> None:
        """Queue the entities a query selects (it needs a WHERE: SQLite would read the ON of
        ON CONFLICT as a join constraint)."""
        self.conn.execute(
            f"INSERT INTO entities_to_refresh (entity_id) {sql} ON CONFLICT DO NOTHING", params
        )

    def save_mentions(self, document_id: int, mentions: Sequence[LinkedMention]) -> list[int]:
        """Insert a document's mentions (the old ones are deleted by the caller); their ids."""
        ids = [self.entity_for(mention.entity) for mention in mentions]
        for mention, entity_id in zip(mentions, ids, strict=True):
            for key in mention.keys:
                self.learn(mention.entity.label, key, entity_id, "abbreviation")
        self.conn.executemany(
            'INSERT INTO mentions (document_id, entity_id, start, "end", text, label, sentence,'
            " role, affiliation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    document_id,
                    entity_id,
                    m.start,
                    m.end,
                    m.text,
                    m.label,
                    m.sentence or None,
                    m.role,
                    ids[m.affiliation] if m.affiliation is not None else None,
                )
                for m, entity_id in zip(mentions, ids, strict=True)
            ],
        )
        return ids

    def entity_for(self, ref: EntityRef) -> int:
        """The id of the entity ``ref`` describes, creating the row (and its parent) if needed."""
        row = self.conn.execute(
            "SELECT id FROM entities WHERE label = ? AND key = ?", (ref.label, ref.key)
        ).fetchone()
        if row is not None:
            if ref.origin != "text" or ref.parent is not None:
                self._update(int(row[0]), ref)
            return int(row[0])
        row = self.conn.execute(
            "SELECT entity_id FROM entity_keys WHERE label = ? AND key = ?", (ref.label, ref.key)
        ).fetchone()
        if row is not None:
            return int(row[0])
        if ref.origin == "text" and ref.label in FUZZY_LABELS:
            similar = self._similar(ref)
            if similar is not None:
                self.learn(ref.label, ref.key, similar, "fuzzy")
                return similar
        return self._create(ref)

    def learn(self, label: str, key: str, entity_id: int, origin: str) -> None:
        """Remember that ``key`` leads to ``entity_id``; the first claim on a key wins."""
        self.conn.execute(
            "INSERT INTO entity_keys (label, key, entity_id, origin) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (label, key) DO NOTHING",
            (label, key, entity_id, origin),
        )

    def _create(self, ref: EntityRef) -> int:
        parent_id = self.entity_for(ref.parent) if ref.parent is not None else None
        entity_id = stable_id(ref.label, ref.key)
        while self.conn.execute("SELECT 1 FROM entities WHERE id = ?", (entity_id,)).fetchone():
            entity_id = entity_id % ID_SPACE + 1
        self.conn.execute(
            "INSERT INTO entities (id, label, key, name, parent_id, latitude, longitude,"
            " municipality) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entity_id,
                ref.label,
                ref.key,
                ref.name,
                parent_id,
                ref.latitude,
                ref.longitude,
                ref.municipality,
            ),
        )
        self.conn.execute("INSERT INTO entities_to_refresh (entity_id) VALUES (?)", (entity_id,))
        return entity_id

    def _update(self, entity_id: int, ref: EntityRef) -> None:
        """Keep curated entities in step with the gazetteer (a corrected name or coordinate)."""
        parent_id = self.entity_for(ref.parent) if ref.parent is not None else None
        if ref.origin == "text":
            self.conn.execute(
                "UPDATE entities SET parent_id = ? WHERE id = ? AND parent_id IS NOT ?",
                (parent_id, entity_id, parent_id),
            )
            return
        self.conn.execute(
            "UPDATE entities SET name = ?, parent_id = ?, latitude = ?, longitude = ?,"
            " municipality = ? WHERE id = ? AND (name IS NOT ? OR parent_id IS NOT ?"
            " OR latitude IS NOT ? OR longitude IS NOT ? OR municipality IS NOT ?)",
            (
                ref.name,
                parent_id,
                ref.latitude,
                ref.longitude,
                ref.municipality,
                entity_id,
                ref.name,
                parent_id,
                ref.latitude,
                ref.longitude,
                ref.municipality,
            ),
        )

    def _similar(self, ref: EntityRef) -> int | None:
        """An entity from the texts whose name differs from ``ref``'s by a typo, if exactly one.

        Candidates share the first letter (typos rarely hit it), which keeps the query on the
        (label, key) index instead of reading every name.
        """
        first = ref.key[:1]
        if not first:
            return None
        upper = chr(ord(first) + 1)
        rows = self.conn.execute(
            "SELECT key, id FROM entities WHERE label = ? AND key >= ? AND key < ?"
            " UNION ALL SELECT key, entity_id FROM entity_keys"
            " WHERE label = ? AND key >= ? AND key < ?",
            (ref.label, first, upper, ref.label, first, upper),
        ).fetchall()
        scored = [
            (token_similarity(ref.key, key), int(entity_id))
            for key, entity_id in rows
            if not CURATED_KEY.match(key)
        ]
        best = max((score for score, _ in scored), default=0.0)
        winners = {entity_id for score, entity_id in scored if score == best}
        if best >= self.fuzzy_threshold and len(winners) == 1:
            return winners.pop()
        return None

    # ------------------------------------------------------------------ after a batch

    def refresh(self, gazetteer: Gazetteer | None = None, *, everything: bool = False) -> None:
        """Counts, names, aliases and co-occurrence links of the entities whose mentions changed.

        Only the queued entities are recomputed, so a batch that annotated a few documents does
        not redo the whole network; ``everything`` queues every entity first (after a gazetteer
        edit, say).
        """
        if everything:
            self._queue("SELECT id FROM entities WHERE true")
        queued = "SELECT entity_id FROM entities_to_refresh"
        self.conn.execute(
            "UPDATE entities SET"
            " mention_count = (SELECT COUNT(*) FROM mentions m WHERE m.entity_id = entities.id),"
            " document_count = (SELECT COUNT(DISTINCT document_id) FROM mentions m"
            f"                   WHERE m.entity_id = entities.id) WHERE id IN ({queued})"
        )
        self._refresh_names_and_aliases(gazetteer or default_gazetteer())
        self._refresh_links()
        self.conn.execute("DELETE FROM entities_to_refresh")

    def _refresh_names_and_aliases(self, gazetteer: Gazetteer) -> None:
        """Names of entities from the texts, and every entity's ``aliases``.

        An entity known only from the texts is named by its fullest spelling with its own key
        (the longest, then the most used): "Bostadsbolaget Söderhem" rather than "Söderhem",
        whichever document came first, and never a merged misspelling. ``aliases`` are the
        gazetteer's other names plus every spelling the texts used, without genitive forms,
        which are inflections, not names ("Hyresgästföreningens"), and without a direction
        word before a place ("södra Malmö" is part of Malmö, not another name for it).
        """
        curated = curated_aliases(gazetteer)
        spellings: dict[int, Counter[str]] = defaultdict(Counter)
        for entity_id, text, count in self.conn.execute(
            "SELECT entity_id, text, COUNT(*) FROM mentions"
            " WHERE entity_id IN (SELECT entity_id FROM entities_to_refresh)"
            " GROUP BY entity_id, text"
        ):
            spellings[int(entity_id)][clean_form(text)] += int(count)
        updates = []
        for entity_id, label, key, stored, current in self.conn.execute(
            "SELECT id, label, key, name, aliases FROM entities"
            " WHERE id IN (SELECT entity_id FROM entities_to_refresh)"
        ).fetchall():
            name = stored
            used = spellings.get(int(entity_id), Counter())
            if not CURATED_KEY.match(key):
                own = [form for form in used if text_key(label, form) == key]
                if own:
                    name = max(own, key=lambda form: (len(form), used[form], form))
            spelt = sorted(f for f in used if not (label == "LOC" and DIRECTION.match(f)))
            aliases = alias_list(name, [*curated.get(key, ()), *spelt])
            value = json.dumps(aliases, ensure_ascii=False) if aliases else None
            if value != current or name != stored:
                updates.append((name, value, entity_id))
        self.conn.executemany("UPDATE entities SET name = ?, aliases = ? WHERE id = ?", updates)

    def _refresh_links(self) -> None:
        """Recount the links of the queued entities, from the documents that mention them."""
        queued = "SELECT entity_id FROM entities_to_refresh"
        self.conn.execute(
            f"DELETE FROM entity_links WHERE entity_a IN ({queued}) OR entity_b IN ({queued})"
        )
        self.conn.execute(
            "WITH present AS ("
            "  SELECT DISTINCT m.document_id AS document, m.entity_id AS entity,"
            "         COALESCE(d.published, d.first_seen) AS day"
            "  FROM mentions m JOIN documents d ON d.id = m.document_id"
            "  WHERE m.document_id IN (SELECT document_id FROM mentions"
            f"                          WHERE entity_id IN ({queued})))"
            " INSERT INTO entity_links (entity_a, entity_b, documents, first_seen, last_seen)"
            " SELECT a.entity, b.entity, COUNT(*), MIN(a.day), MAX(a.day)"
            " FROM present a JOIN present b ON a.document = b.document AND a.entity < b.entity"
            f" WHERE a.entity IN ({queued}) OR b.entity IN ({queued})"
            " GROUP BY a.entity, b.entity"
        )


def curated_aliases(gazetteer: Gazetteer) -> dict[str, tuple[str, ...]]:
    """Other names of every gazetteer organisation and district, by entity key."""
    aliases: dict[str, tuple[str, ...]] = {}
    for org in gazetteer.organisations:
        aliases[org.key] = (*org.aliases, *org.former)
    for district in gazetteer.districts:
        aliases[f"district:{district.id}"] = district.aliases
    return aliases


def alias_list(name: str, forms: Sequence[str]) -> list[str]:
    """Distinct other names for ``name`` (case-insensitively), without genitive forms."""
    seen = {name.casefold()}
    kept: list[str] = []
    for form in forms:
        if form and form.casefold() not in seen:
            seen.add(form.casefold())
            kept.append(form)
    return sorted(
        form
        for form in kept
        if not (form.endswith("s") and form[:-1].casefold() in seen and len(form) > 3)
    )


# --------------------------------------------------------------------------- relinking


def relink(db: Any, linker: Linker | None = None) -> int:
    """Link every document's stored mentions again, without running the NER model.

    The mentions keep the model's spans and labels, so after an edit of the gazetteer (a new
    alias, a district, a corrected coordinate) this brings the entities up to date in seconds
    rather than re-annotating the corpus. Ids of entities that keep their key do not change.
    Returns the number of documents relinked.
    """
    from pipeline.store.db import transaction

    linker = linker or default_linker()
    documents = db.conn.execute(
        "SELECT id, text FROM documents WHERE id IN (SELECT document_id FROM mentions) ORDER BY id"
    ).fetchall()
    for document_id, text in documents:
        spans = [
            SimpleNamespace(start=start, end=end, label=label, text=surface)
            for start, end, label, surface in db.conn.execute(
                'SELECT start, "end", label, text FROM mentions WHERE document_id = ?'
                " ORDER BY start, id",
                (document_id,),
            )
        ]
        contacts = [
            SimpleNamespace(name=name, role=role, organisation=organisation)
            for name, role, organisation in db.conn.execute(
                "SELECT name, role, organisation FROM contacts WHERE document_id = ?",
                (document_id,),
            )
        ]
        linked = linker.link(text, spans, contacts)
        with transaction(db) as conn:
            EntityStore(conn).replace_mentions(document_id, linked)
    with transaction(db) as conn:
        EntityStore(conn).refresh(linker.gazetteer, everything=True)
    return len(documents)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class GoldMention:
    """A hand-labelled mention: where it is, its label, and the entity it names."""

    document: str
    start: int
    end: int
    text: str
    label: str
    entity: str
    coordinates: tuple[float, float] | None = None
    within_km: float | None = None


def pair_scores(gold: Sequence[str], predicted: Sequence[object]) -> dict[str, float | int]:
    """Pairwise precision, recall and F1 of a grouping: each pair of mentions is one decision.

    A pair is a true positive when both the gold labels and the prediction put the two
    mentions in one entity. Counting through the cluster sizes avoids listing the pairs.
    """

    def pairs(counts: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    both = pairs(Counter(zip(gold, predicted, strict=True)))
    in_gold, in_predicted = pairs(Counter(gold)), pairs(Counter(predicted))
    return {
        **precision_recall_f1(both, in_predicted, in_gold, empty=1.0),
        "true_pairs": both,
        "predicted_pairs": in_predicted,
        "gold_pairs": in_gold,
    }


def evaluate_linking(
    documents: Sequence[dict[str, str]],
    gold: Sequence[GoldMention],
    *,
    linker: Linker | None = None,
    fuzzy_threshold: float = FUZZY_THRESHOLD,
    spans: dict[str, Sequence[Any]] | None = None,
) -> dict[str, object]:
    """Link mentions document by document into a fresh database and score the result.

    By default the hand-labelled spans are linked, so the scores measure grouping and geocoding
    alone. With ``spans`` (say, the NER model's, by document id) those are linked instead, and
    only the gold mentions the spans found exactly (same start and end) are scored; how many
    that is says how much the model's boundaries cost. Documents are processed in the given
    order, as a batch would, so what one document teaches (an abbreviation, a spelling) reaches
    the later ones.
    """
    from pipeline.store.db import open_db, transaction

    linker = linker or Linker(fuzzy_threshold=fuzzy_threshold)
    linker.fuzzy_threshold = fuzzy_threshold
    db = open_db(Path(":memory:"))
    ids = _insert_documents(db, documents)
    if spans is None:
        spans = defaultdict(list)
        for mention in gold:
            spans[mention.document].append(mention)
    predicted: dict[tuple[str, int, int], int] = {}
    started = time.perf_counter()
    for document in documents:
        found = spans.get(document["id"], [])
        linked = linker.link(document["text"], found)
        with transaction(db) as conn:
            store = EntityStore(conn, fuzzy_threshold=fuzzy_threshold)
            entity_ids = store.save_mentions(ids[document["id"]], linked)
        for span, entity_id in zip(found, entity_ids, strict=True):
            predicted[(document["id"], span.start, span.end)] = entity_id
    seconds = time.perf_counter() - started
    rows = {
        int(row[0]): (row[1], row[2], row[3])
        for row in db.conn.execute("SELECT id, latitude, longitude, label FROM entities")
    }
    db.close()
    scored = [m for m in gold if (m.document, m.start, m.end) in predicted]
    linked_ids = {(m.document, m.start): predicted[(m.document, m.start, m.end)] for m in scored}
    return {
        "documents": len(documents),
        "mentions": len(gold),
        "scored_mentions": len(scored),
        "gold_entities": len({m.entity for m in gold}),
        "predicted_entities": len(set(linked_ids.values())),
        "fuzzy_threshold": fuzzy_threshold,
        "pairwise": pair_scores([m.entity for m in scored], [linked_ids[_at(m)] for m in scored]),
        "by_label": {
            label: pair_scores(
                [m.entity for m in scored if m.label == label],
                [linked_ids[_at(m)] for m in scored if m.label == label],
            )
            for label in ("ORG", "PER", "LOC")
        },
        "geocoding": geocoding_scores(scored, linked_ids, rows),
        "mentions_per_second": round(sum(map(len, spans.values())) / seconds) if seconds else 0,
        "errors": grouping_errors(scored, linked_ids),
    }


def _at(mention: GoldMention) -> tuple[str, int]:
    return (mention.document, mention.start)


def geocoding_scores(
    gold: Sequence[GoldMention],
    predicted: dict[tuple[str, int], int],
    rows: dict[int, tuple[float | None, float | None, str]],
) -> dict[str, object]:
    """Place mentions placed within tolerance (or rightly left without coordinates).

    "wrong" counts coordinates where there should be none or far from the right place;
    "unplaced" counts places that should have coordinates but got none (a miss, not an error).
    """
    places = [m for m in gold if m.label == "LOC"]
    correct = wrong = unplaced = 0
    mistakes = []
    for mention in places:
        latitude, longitude, _ = rows[predicted[(mention.document, mention.start)]]
        if mention.coordinates is None:
            ok = latitude is None
        elif latitude is None or longitude is None:
            unplaced += 1
            mistakes.append({"text": mention.text, "document": mention.document, "got": None})
            continue
        else:
            apart = distance_km(latitude, longitude, *mention.coordinates)
            ok = apart <= (mention.within_km or 5.0)
        correct += ok
        if not ok:
            wrong += 1
            mistakes.append(
                {"text": mention.text, "document": mention.document, "got": [latitude, longitude]}
            )
    return {
        "mentions": len(places),
        "correct": correct,
        "wrong": wrong,
        "unplaced": unplaced,
        "accuracy": round(correct / len(places), 4) if places else 1.0,
        "mistakes": mistakes,
    }


def grouping_errors(
    gold: Sequence[GoldMention], predicted: dict[tuple[str, int], int]
) -> dict[str, list[dict[str, object]]]:
    """Gold entities split over several predicted ones, and predicted ones merging gold ones."""
    by_gold: dict[str, set[int]] = defaultdict(set)
    by_predicted: dict[int, set[str]] = defaultdict(set)
    forms: dict[str, set[str]] = defaultdict(set)
    for mention in gold:
        entity_id = predicted[(mention.document, mention.start)]
        by_gold[mention.entity].add(entity_id)
        by_predicted[entity_id].add(mention.entity)
        forms[mention.entity].add(mention.text)
    return {
        "split": [
            {"entity": entity, "parts": len(parts), "forms": sorted(forms[entity])}
            for entity, parts in sorted(by_gold.items())
            if len(parts) > 1
        ],
        "merged": [
            {"entities": sorted(entities)}
            for entities in sorted(by_predicted.values(), key=sorted)
            if len(entities) > 1
        ],
    }


def _insert_documents(db: Any, documents: Sequence[dict[str, str]]) -> dict[str, int]:
    """Minimal source, page and document rows so that mentions can point at documents."""
    from pipeline.store.db import content_hash, transaction, utcnow

    now = utcnow()
    ids = {}
    with transaction(db) as conn:
        conn.execute(
            "INSERT INTO sources (id, name, kind, hosts, recrawl_seconds)"
            " VALUES ('evaluation', 'Evaluation set', 'press_release', '', 0)"
        )
        for number, document in enumerate(documents, start=1):
            url = f"https://evaluation.invalid/{number}"
            conn.execute(
                "INSERT INTO pages (url, source_id, role, fetch_url, first_seen)"
                " VALUES (?, 'evaluation', 'document', ?, ?)",
                (url, url, now),
            )
            cursor = conn.execute(
                "INSERT INTO documents (url, source_id, kind, text, content_hash, first_seen,"
                " updated) VALUES (?, 'evaluation', 'press_release', ?, ?, ?, ?)",
                (url, document["text"], content_hash(document["text"]), now, now),
            )
            ids[document["id"]] = int(cursor.lastrowid)
    return ids


def read_gold(path: Path) -> tuple[list[dict[str, str]], list[GoldMention]]:
    """The hand-made set: ``documents.jsonl`` and ``mentions.jsonl`` in ``path``."""
    documents = [json.loads(line) for line in (path / "documents.jsonl").open(encoding="utf-8")]
    mentions = []
    for line in (path / "mentions.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        coordinates = row.get("coordinates")
        mentions.append(
            GoldMention(
                document=row["document"],
                start=row["start"],
                end=row["end"],
                text=row["text"],
                label=row["label"],
                entity=row["entity"],
                coordinates=tuple(coordinates) if coordinates else None,
                within_km=row.get("within_km"),
            )
        )
    return documents, mentions
