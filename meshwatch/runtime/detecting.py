"""Detection wired into the running service: novel edges on ingest, windows on a timer,
scoring in a worker thread, promotion, persistence in the state directory, alert logging.

Anomalies are logged one JSON object per line on the ``meshwatch.anomalies`` logger, so log
pipelines can parse them without scraping prose.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Sequence

from meshwatch.adapters.files.models import load_bundle, save_bundle
from meshwatch.calls import Call
from meshwatch.detection.anomalies import Anomaly
from meshwatch.detection.engine import DetectionEngine, DetectionParams, Mode
from meshwatch.detection.models import ModelBundle, TrainingParams
from meshwatch.graph.mesh_graph import Edge, MeshGraph
from meshwatch.settings import Settings

log = logging.getLogger(__name__)
alerts = logging.getLogger("meshwatch.anomalies")
STATE_MODEL = "model.skops"


def detection_params(settings: Settings) -> DetectionParams:
    return DetectionParams(
        window_seconds=settings.window,
        min_requests=settings.min_requests,
        learn_for=settings.learn_for or None,
        learn_calls=settings.learn_calls or None,
        training=TrainingParams(
            target_false_alerts_per_day=settings.false_alerts_per_day,
            min_requests=settings.min_requests,
        ),
    )


def initial_bundle(settings: Settings) -> ModelBundle | None:
    """The learned state from the state directory, else the configured model, else none."""
    if settings.state_dir is not None and (settings.state_dir / STATE_MODEL).exists():
        bundle = load_bundle(settings.state_dir / STATE_MODEL, settings.window)
        log.info(
            "loaded learned state from %s (%d edges)",
            settings.state_dir,
            len(bundle.baseline.known_edges),
        )
        return bundle
    if settings.model is not None:
        return load_bundle(settings.model, settings.window)
    return None


def log_anomaly(anomaly: Anomaly) -> None:
    alerts.warning(json.dumps({"event": "anomaly", **anomaly.to_doc()}, default=str))


class Detection:
    """The engine plus what the service does around it."""

    def __init__(self, settings: Settings, graph: MeshGraph) -> None:
        self.settings = settings
        self.graph = graph
        self.engine = DetectionEngine(
            detection_params(settings), Mode(settings.mode), initial_bundle(settings)
        )
        self.last_scoring_seconds = 0.0
        self.scored_windows = 0

    def on_ingest(self, calls: Sequence[Call], created: Sequence[tuple[Edge, Call]]) -> None:
        """After a batch is recorded: learning counters and the novel-edge check."""
        self.engine.on_calls(calls)
        for edge, first in created:
            anomaly = self.engine.on_new_edge(
                (edge.key.source, edge.key.destination, edge.key.port), first
            )
            if anomaly is not None:
                log_anomaly(anomaly)

    async def run(self) -> None:
        """Close a window every ``window`` seconds, aligned to the wall clock."""
        window = self.settings.window
        while True:
            now = time.time()
            boundary = math.floor(now / window) * window + window
            await asyncio.sleep(max(0.0, boundary - now))
            await self.close_window(boundary)

    async def close_window(self, end: float) -> list[Anomaly]:
        engine = self.engine
        if engine.should_promote(end):
            await self.promote()
        _, views = self.graph.snapshot(end)
        rows, matrix = engine.window_rows(views, end)
        if engine.mode is not Mode.OBSERVE or engine.bundle is None or not rows:
            return []
        started = time.perf_counter()
        scores = await asyncio.to_thread(engine.bundle.anomaly_scores, matrix)
        self.last_scoring_seconds = time.perf_counter() - started
        self.scored_windows += len(rows)
        found = engine.decide(rows, scores, views, end)
        for anomaly in found:
            log_anomaly(anomaly)
        return found

    async def promote(self) -> ModelBundle:
        """Learn → observe: fit off the event loop, then persist (``ModelError`` if too little data)."""
        engine = self.engine
        rows = engine.learned_rows()
        log.info(
            "promoting the baseline: %d edge-windows, %d edges",
            len(rows),
            len(engine.learning.edges),
        )
        bundle = await asyncio.to_thread(engine.promote)
        if self.settings.state_dir is not None:
            paths = await asyncio.to_thread(
                save_bundle, bundle, self.settings.state_dir / STATE_MODEL
            )
            log.info("learned state saved: %s", ", ".join(str(p) for p in paths))
        log.info(
            "now observing: threshold %.4f for %.2f false alerts/day",
            bundle.threshold.value,
            bundle.card.target_false_alerts_per_day,
        )
        return bundle
