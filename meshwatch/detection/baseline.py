"""The learned baseline: which edges exist, and what each looked like."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshwatch.calls import EdgeKey, Workload
from meshwatch.features.baselines import EdgeBaseline

MAX_ACTORS = 50_000


def actor_doc(actor: Workload) -> dict[str, Any]:
    return {
        "namespace": actor.namespace,
        "workload": actor.workload,
        "principal": actor.principal,
        "app": actor.app,
        "external": actor.external,
        "labels": dict(actor.labels),
    }


def actor_from_doc(node_id: str, doc: Mapping[str, Any]) -> Workload:
    return Workload(
        id=node_id,
        namespace=str(doc.get("namespace", "")),
        workload=str(doc.get("workload", "")),
        principal=str(doc.get("principal", "")),
        app=str(doc.get("app", "")),
        external=bool(doc.get("external", False)),
        labels=tuple(sorted((str(k), str(v)) for k, v in (doc.get("labels") or {}).items())),
    )


@dataclass
class Baseline:
    """Edges seen while learning (for the novel-edge check) and per-edge statistics."""

    known_edges: set[EdgeKey] = field(default_factory=set)
    edges: dict[EdgeKey, EdgeBaseline] = field(default_factory=dict)
    learned_from: float = 0.0
    learned_until: float = 0.0
    calls: int = 0
    actors: dict[str, Workload] = field(default_factory=dict)
    """Who each node was while learning (principal, namespace, labels): runtime defence names
    callers and selects workloads with these, and replays their calls through a proposed
    policy even when they have not called since a restart."""

    approved: set[tuple[str, str]] = field(default_factory=set)
    """(source, destination) pairs an operator accepted on every port."""

    def is_novel(self, edge: EdgeKey) -> bool:
        """The deterministic check: an edge never seen while learning, nor approved since."""
        return edge not in self.known_edges and (edge.source, edge.destination) not in self.approved

    def to_doc(self) -> dict[str, Any]:
        return {
            "version": 1,
            "learned_from": self.learned_from,
            "learned_until": self.learned_until,
            "calls": self.calls,
            "known_edges": sorted(e.text for e in self.known_edges),
            "edges": {e.text: b.to_doc() for e, b in sorted(self.edges.items())},
            "actors": {n: actor_doc(a) for n, a in sorted(self.actors.items())},
            "approved": sorted([s, d] for s, d in self.approved),
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
            actors={str(n): actor_from_doc(str(n), a) for n, a in doc.get("actors", {}).items()},
            approved={(str(p[0]), str(p[1])) for p in doc.get("approved", [])},
        )
