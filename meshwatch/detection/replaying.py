"""Drive graph and detection with the timestamps carried by the calls.

Captured calls (training) and simulated calls (evaluation) run through exactly the code
live traffic does (Call → graph → features → detectors); only the clock differs: window
boundaries come from the calls' own times instead of a timer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from meshwatch.calls import Call
from meshwatch.detection.anomalies import Anomaly
from meshwatch.detection.engine import DetectionEngine, Mode
from meshwatch.graph.mesh_graph import MeshGraph


def ingest(graph: MeshGraph, engine: DetectionEngine, calls: Sequence[Call]) -> list[Anomaly]:
    """What the live pipeline does with a decoded batch: record, then check new edges."""
    engine.on_calls(calls)
    found = []
    for edge, first in graph.record_all(calls):
        anomaly = engine.on_new_edge((edge.key.source, edge.key.destination, edge.key.port), first)
        if anomaly is not None:
            found.append(anomaly)
    return found


def close_window(graph: MeshGraph, engine: DetectionEngine, end: float) -> list[Anomaly]:
    """What the live window timer does (scoring inline here; live runs it in a thread)."""
    if engine.should_promote(end):
        engine.promote()
    _, views = graph.snapshot(end)
    rows, matrix = engine.window_rows(views, end)
    if engine.mode is not Mode.OBSERVE or engine.bundle is None or not rows:
        return []
    scores = engine.bundle.anomaly_scores(matrix)
    return engine.decide(rows, scores, views, end)


class Replayer:
    """Feeds time-ordered calls, closing windows as their times pass boundaries."""

    def __init__(self, graph: MeshGraph, engine: DetectionEngine, window_seconds: float) -> None:
        self.graph = graph
        self.engine = engine
        self.window = window_seconds
        self.next_boundary: float | None = None

    def feed(self, calls: Iterable[Call]) -> list[Anomaly]:
        found: list[Anomaly] = []
        batch: list[Call] = []
        for call in calls:
            if self.next_boundary is None:
                self.next_boundary = math.floor(call.time / self.window) * self.window + self.window
            if call.time >= self.next_boundary:
                found += ingest(self.graph, self.engine, batch)
                batch = []
                while call.time >= self.next_boundary:
                    found += close_window(self.graph, self.engine, self.next_boundary)
                    self.next_boundary += self.window
            batch.append(call)
        found += ingest(self.graph, self.engine, batch)
        return found

    def advance_to(self, t: float) -> list[Anomaly]:
        """Close every window boundary up to ``t`` (quiet periods)."""
        found: list[Anomaly] = []
        while self.next_boundary is not None and t >= self.next_boundary:
            found += close_window(self.graph, self.engine, self.next_boundary)
            self.next_boundary += self.window
        return found
