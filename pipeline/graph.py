"""The co-occurrence network of entities as a file for Gephi: GEXF 1.3 or GraphML.

Nodes are entities with at least one mention; an edge joins two entities named in the same
documents and weighs how many (the ``entity_links`` table). Node attributes carry what a network
view needs to colour, size and place them: label (ORG/PER/LOC), mention and document counts,
municipality and, for places, coordinates (Gephi's GeoLayout reads ``latitude``/``longitude``).
Edges carry the first and last publication date, so the network can be filtered by period.

Both formats are written with the standard library's ElementTree, so no graph library is needed.
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

FORMATS = ("gexf", "graphml")
LABELS = ("ORG", "PER", "LOC")

NODE_ATTRIBUTES = (
    ("label", "string"),
    ("mentions", "integer"),
    ("documents", "integer"),
    ("municipality", "string"),
    ("latitude", "double"),
    ("longitude", "double"),
)
EDGE_ATTRIBUTES = (("first_seen", "string"), ("last_seen", "string"))


@dataclass(frozen=True)
class Node:
    id: int
    name: str
    values: dict[str, object]


@dataclass(frozen=True)
class Edge:
    source: int
    target: int
    weight: int
    values: dict[str, object]


def read_graph(
    conn: sqlite3.Connection, labels: Sequence[str] = LABELS, min_documents: int = 1
) -> tuple[list[Node], list[Edge]]:
    """Entities of the given labels with mentions, and their links in at least ``min_documents``."""
    marks = ", ".join("?" for _ in labels)
    nodes = [
        Node(
            id=int(row[0]),
            name=row[1],
            values={
                "label": row[2],
                "mentions": row[3],
                "documents": row[4],
                "municipality": row[5],
                "latitude": row[6],
                "longitude": row[7],
            },
        )
        for row in conn.execute(
            "SELECT id, name, label, mention_count, document_count, municipality, latitude,"
            f" longitude FROM entities WHERE document_count > 0 AND label IN ({marks})"
            " ORDER BY id",
            tuple(labels),
        )
    ]
    known = {node.id for node in nodes}
    edges = [
        Edge(int(a), int(b), int(n), {"first_seen": first, "last_seen": last})
        for a, b, n, first, last in conn.execute(
            "SELECT entity_a, entity_b, documents, first_seen, last_seen FROM entity_links"
            " WHERE documents >= ? ORDER BY entity_a, entity_b",
            (min_documents,),
        )
        if int(a) in known and int(b) in known
    ]
    return nodes, edges


def gexf(nodes: Sequence[Node], edges: Sequence[Edge]) -> ET.ElementTree:
    """GEXF 1.3, the format Gephi opens natively, with typed node and edge attributes."""
    root = ET.Element("gexf", {"xmlns": "http://gexf.net/1.3", "version": "1.3"})
    meta = ET.SubElement(root, "meta", {"lastmodifieddate": datetime.now(UTC).date().isoformat()})
    ET.SubElement(meta, "creator").text = "pipeline export-graph"
    ET.SubElement(
        meta, "description"
    ).text = "Organisations, people and places named in the same documents"
    graph = ET.SubElement(root, "graph", {"mode": "static", "defaultedgetype": "undirected"})
    for cls, attributes in (("node", NODE_ATTRIBUTES), ("edge", EDGE_ATTRIBUTES)):
        block = ET.SubElement(graph, "attributes", {"class": cls})
        for name, kind in attributes:
            ET.SubElement(block, "attribute", {"id": name, "title": name, "type": kind})
    node_block = ET.SubElement(graph, "nodes")
    for node in nodes:
        element = ET.SubElement(node_block, "node", {"id": str(node.id), "label": node.name})
        _gexf_values(element, node.values)
    edge_block = ET.SubElement(graph, "edges")
    for number, edge in enumerate(edges):
        element = ET.SubElement(
            edge_block,
            "edge",
            {
                "id": str(number),
                "source": str(edge.source),
                "target": str(edge.target),
                "weight": str(edge.weight),
            },
        )
        _gexf_values(element, edge.values)
    return ET.ElementTree(root)


def _gexf_values(element: ET.Element, values: dict[str, object]) -> None:
    present = {k: v for k, v in values.items() if v is not None}
    if present:
        block = ET.SubElement(element, "attvalues")
        for key, value in present.items():
            ET.SubElement(block, "attvalue", {"for": key, "value": str(value)})


GRAPHML_TYPES = {"string": "string", "integer": "int", "double": "double"}


def graphml(nodes: Sequence[Node], edges: Sequence[Edge]) -> ET.ElementTree:
    """GraphML, for Gephi, yEd, Cytoscape or networkx; node names are the ``name`` key."""
    root = ET.Element("graphml", {"xmlns": "http://graphml.graphdrawing.org/xmlns"})
    ET.SubElement(
        root, "key", {"id": "name", "for": "node", "attr.name": "name", "attr.type": "string"}
    )
    for scope, attributes in (("node", NODE_ATTRIBUTES), ("edge", EDGE_ATTRIBUTES)):
        for name, kind in attributes:
            ET.SubElement(
                root,
                "key",
                {
                    "id": name,
                    "for": scope,
                    "attr.name": name,
                    "attr.type": GRAPHML_TYPES[kind],
                },
            )
    ET.SubElement(
        root, "key", {"id": "weight", "for": "edge", "attr.name": "weight", "attr.type": "int"}
    )
    graph = ET.SubElement(root, "graph", {"id": "entities", "edgedefault": "undirected"})
    for node in nodes:
        element = ET.SubElement(graph, "node", {"id": f"n{node.id}"})
        _graphml_values(element, {"name": node.name, **node.values})
    for edge in edges:
        element = ET.SubElement(
            graph, "edge", {"source": f"n{edge.source}", "target": f"n{edge.target}"}
        )
        _graphml_values(element, {"weight": edge.weight, **edge.values})
    return ET.ElementTree(root)


def _graphml_values(element: ET.Element, values: dict[str, object]) -> None:
    for key, value in values.items():
        if value is not None:
            ET.SubElement(element, "data", {"key": key}).text = str(value)


def export_graph(
    db_path: Path,
    output: BinaryIO,
    *,
    graph_format: str = "gexf",
    labels: Sequence[str] = LABELS,
    min_documents: int = 1,
) -> tuple[int, int]:
    """Write the network to ``output``; returns the number of nodes and edges written."""
    if graph_format not in FORMATS:
        raise ValueError(f"unknown graph format {graph_format!r}; use one of {', '.join(FORMATS)}")
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        nodes, edges = read_graph(conn, labels, min_documents)
    finally:
        conn.close()
    tree = gexf(nodes, edges) if graph_format == "gexf" else graphml(nodes, edges)
    ET.indent(tree)
    tree.write(output, encoding="utf-8", xml_declaration=True)
    return len(nodes), len(edges)


def format_for(path: Path, given: str | None) -> str:
    """The format asked for, or the one the file name's suffix implies (GEXF by default)."""
    if given:
        return given
    return "graphml" if path.suffix.lower() == ".graphml" else "gexf"
