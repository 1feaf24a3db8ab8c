"""The learned baseline: which edges exist, and what each looked like."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshwatch.features.baselines import EdgeBaseline

EdgeId = tuple[str, str, int]


def edge_key_text(edge: EdgeId) -> str:
    return f"{edge[0]}|{edge[1]}|{edge[2]}"


def parse_edge_key(text: str) -> EdgeId:
    source, target, port = text.rsplit("|", 2)
    return (source, target, int(port))


@dataclass
class Baseline:
    """Edges seen while learning (for the novel-edge check) and per-edge statistics."""

    known_edges: set[EdgeId] = field(default_factory=set)
    edges: dict[EdgeId, EdgeBaseline] = field(default_factory=dict)
    learned_from: float = 0.0
    learned_until: float = 0.0
    calls: int = 0

    def is_novel(self, edge: EdgeId) -> bool:
        """The deterministic check: an edge never seen while learning."""
        return edge not in self.known_edges

    def to_doc(self) -> dict[str, Any]:
        return {
            "version": 1,
            "learned_from": self.learned_from,
            "learned_until": self.learned_until,
            "calls": self.calls,
            "known_edges": sorted(edge_key_text(e) for e in self.known_edges),
            "edges": {edge_key_text(e): b.to_doc() for e, b in sorted(self.edges.items())},
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Baseline:
        return cls(
            known_edges={parse_edge_key(e) for e in doc.get("known_edges", [])},
            edges={
                parse_edge_key(e): EdgeBaseline.from_doc(b) for e, b in doc.get("edges", {}).items()
            },
            learned_from=float(doc.get("learned_from", 0.0)),
            learned_until=float(doc.get("learned_until", 0.0)),
            calls=int(doc.get("calls", 0)),
        )
