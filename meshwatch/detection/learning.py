"""The learning state: edges seen, reservoir-sampled window rows and paths per edge.

It can be written to and read back from a plain JSON document, so learning in progress
survives a restart (``--state-dir``) without pickling anything.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshwatch.calls import Call, EdgeKey, Workload
from meshwatch.detection.baseline import MAX_ACTORS, actor_doc, actor_from_doc
from meshwatch.errors import ModelError
from meshwatch.features.rows import FEATURE_COLUMNS, WindowRow

MAX_ROWS_PER_EDGE = 2000
MAX_PATHS_PER_EDGE = 512
CHECKPOINT_VERSION = 2


@dataclass
class Learning:
    """What learning has collected so far: bounded, and checkpointable as plain JSON."""

    rows: dict[EdgeKey, list[WindowRow]] = field(default_factory=dict)
    seen: Counter[EdgeKey] = field(default_factory=Counter)
    paths: dict[EdgeKey, set[str]] = field(default_factory=dict)
    edges: set[EdgeKey] = field(default_factory=set)
    calls: int = 0
    started: float | None = None
    actors: dict[str, Workload] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(11))  # noqa: S311 (sampling, not secrets)

    def add(self, row: WindowRow, paths: Iterable[str]) -> None:
        """Reservoir-sample rows per edge so learning for days stays bounded in memory."""
        bucket = self.rows.setdefault(row.edge, [])
        self.seen[row.edge] += 1
        if len(bucket) < MAX_ROWS_PER_EDGE:
            bucket.append(row)
        else:
            slot = self.rng.randrange(self.seen[row.edge])
            if slot < MAX_ROWS_PER_EDGE:
                bucket[slot] = row
        known = self.paths.setdefault(row.edge, set())
        for p in paths:
            if len(known) < MAX_PATHS_PER_EDGE:
                known.add(p)

    def meet(self, first_call: Call) -> None:
        """Remember who the two ends of a new edge are (bounded)."""
        for actor in (first_call.source, first_call.destination):
            if actor.id not in self.actors and len(self.actors) < MAX_ACTORS:
                self.actors[actor.id] = actor

    def to_doc(self) -> dict[str, Any]:
        """A JSON-ready checkpoint."""
        return {
            "version": CHECKPOINT_VERSION,
            "feature_columns": list(FEATURE_COLUMNS),
            "calls": self.calls,
            "started": self.started,
            "edges": sorted(e.text for e in self.edges),
            "seen": {e.text: n for e, n in sorted(self.seen.items())},
            "paths": {e.text: sorted(p) for e, p in sorted(self.paths.items())},
            "actors": {n: actor_doc(a) for n, a in sorted(self.actors.items())},
            "rows": {
                e.text: [[r.end, r.requests, *r.values, r.caller_inbound] for r in rows]
                for e, rows in sorted(self.rows.items())
            },
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Learning:
        """Read a checkpoint back (``ModelError`` when it is not one this code wrote)."""
        try:
            if doc.get("version") != CHECKPOINT_VERSION:
                raise ModelError(
                    f"learning checkpoint version {doc.get('version')!r} is not {CHECKPOINT_VERSION}"
                )
            if tuple(doc["feature_columns"]) != FEATURE_COLUMNS:
                raise ModelError(
                    "learning checkpoint has other feature columns than this meshwatch"
                )
            learning = cls(calls=int(doc["calls"]))
            started = doc.get("started")
            learning.started = None if started is None else float(started)
            learning.edges = {EdgeKey.parse(str(e)) for e in doc["edges"]}
            learning.seen = Counter({EdgeKey.parse(str(e)): int(n) for e, n in doc["seen"].items()})
            learning.paths = {
                EdgeKey.parse(str(e)): {str(p) for p in paths} for e, paths in doc["paths"].items()
            }
            learning.actors = {
                str(n): actor_from_doc(str(n), a) for n, a in (doc.get("actors") or {}).items()
            }
            width = len(FEATURE_COLUMNS)
            for text, rows in doc["rows"].items():
                edge = EdgeKey.parse(str(text))
                bucket = []
                for row in rows:
                    if len(row) != width + 3:
                        raise ModelError(f"learning checkpoint row of {edge} has {len(row)} values")
                    values = tuple(float(v) for v in row[2 : 2 + width])
                    bucket.append(WindowRow(edge, float(row[0]), values, int(row[1]), int(row[-1])))
                learning.rows[edge] = bucket[:MAX_ROWS_PER_EDGE]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"learning checkpoint is malformed: {exc}") from exc
        return learning
