"""The learned baseline: which edges exist, and what each looked like."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshwatch.calls import EdgeKey
from meshwatch.features.baselines import EdgeBaseline


@dataclass
class Baseline:
    """Edges seen while learning (for the novel-edge check) and per-edge statistics."""

    known_edges: set[EdgeKey] = field(default_factory=set)
    edges: dict[EdgeKey, EdgeBaseline] = field(default_factory=dict)
    learned_from: float = 0.0
    learned_until: float = 0.0
    calls: int = 0

    def is_novel(self, edge: EdgeKey) -> bool:
        """The deterministic check: an edge never seen while learning."""
        return edge not in self.known_edges

    def to_doc(self) -> dict[str, Any]:
        return {
            "version": 1,
            "learned_from": self.learned_from,
            "learned_until": self.learned_until,
            "calls": self.calls,
            "known_edges": sorted(e.text for e in self.known_edges),
            "edges": {e.text: b.to_doc() for e, b in sorted(self.edges.items())},
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Baseline:
        return cls(
            known_edges={EdgeKey.parse(e) for e in doc.get("known_edges", [])},
            edges={
                EdgeKey.parse(e): EdgeBaseline.from_doc(b) for e, b in doc.get("edges", {}).items()
            },
            learned_from=float(doc.get("learned_from", 0.0)),
            learned_until=float(doc.get("learned_until", 0.0)),
            calls=int(doc.get("calls", 0)),
        )
