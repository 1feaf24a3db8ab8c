"""The monitor core in the running service: its window clock, the thread hops, the state
directory and what its events turn into (log lines, figures).

The core is synchronous and owned by the event loop. Two steps are CPU-heavy and go to a
worker thread: scoring a window (``WindowWork.score``) and fitting a model
(``PromotionPlan.fit``); both are pure and read only frozen inputs, so the loop keeps
ingesting meanwhile. Anomalies are logged one JSON object per line on the
``meshwatch.anomalies`` logger, so log pipelines can parse them without scraping prose.

A promotion that is due but has too little to learn from is logged, counted
(``meshwatch_detection_promotion_failures``), shown in ``/api/v1/baseline`` and retried at
the next window; learning goes on. It never stops the service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from meshwatch.adapters.files.checkpoints import load_checkpoint, save_checkpoint
from meshwatch.adapters.files.models import load_bundle, save_bundle
from meshwatch.calls import WindowSpec
from meshwatch.decoding.streams import EntryLimits
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.detection.learning import Learning
from meshwatch.detection.models import ModelBundle, TrainingParams
from meshwatch.errors import ModelError
from meshwatch.graph.mesh_graph import GraphLimits
from meshwatch.identity.resolving import IdentityResolver
from meshwatch.monitor.core import Monitor
from meshwatch.monitor.events import (
    AnomalyEnded,
    AnomalyRaised,
    BaselinePromoted,
    Event,
    NodesMerged,
    PromotionFailed,
)
from meshwatch.monitor.readmodel import ServiceFigures, anomaly_doc
from meshwatch.settings import Settings

log = logging.getLogger(__name__)
alerts = logging.getLogger("meshwatch.anomalies")
STATE_MODEL = "model.skops"
STATE_LEARNING = "learning.json"
STATE_FILE = "state.json"
CHECKPOINT_SECONDS = 60.0


def window_spec(settings: Settings) -> WindowSpec:
    return WindowSpec(settings.window, settings.window_slices, settings.window_grace)


def detection_params(settings: Settings) -> DetectionParams:
    return DetectionParams(
        window=window_spec(settings),
        min_requests=settings.min_requests,
        min_baseline_windows=settings.min_baseline_windows,
        min_baseline_calls=settings.min_baseline_calls,
        learn_for=settings.learn_for or None,
        learn_calls=settings.learn_calls or None,
        training=TrainingParams(
            target_false_alerts_per_day=settings.false_alerts_per_day,
            min_requests=settings.min_requests,
        ),
    )


def graph_limits(settings: Settings) -> GraphLimits:
    return GraphLimits(
        window=window_spec(settings),
        edge_ttl=settings.edge_ttl,
        max_paths=settings.max_paths_per_edge,
        max_methods=settings.max_methods_per_edge,
        native=settings.ingest_decoder != "upb",  # forcing the fallback forces it everywhere
    )


def initial_bundle(settings: Settings) -> ModelBundle | None:
    """The learned state from the state directory, else the configured model, else none.

    The state directory records its mode (``state.json``). A directory that was promoted
    resumes observing, whatever ``--mode`` says; one that says it observes but lost its model
    is refused, loudly, rather than silently starting to learn from scratch."""
    state_dir = settings.state_dir
    if state_dir is not None:
        recorded = load_checkpoint(state_dir / STATE_FILE) or {}
        model = state_dir / STATE_MODEL
        if recorded.get("mode") == Mode.OBSERVE.value and not model.exists():
            raise ModelError(
                f"state directory {state_dir} records a promoted baseline but {model.name} is "
                f"missing: restore it, or remove {state_dir / STATE_FILE} to learn afresh"
            )
        if model.exists():
            bundle = load_bundle(model, settings.window)
            if settings.mode != Mode.OBSERVE.value:
                log.warning(
                    "state directory %s holds a promoted baseline: resuming observe mode "
                    "(use another --state-dir to learn again)",
                    state_dir,
                )
            log.info(
                "loaded learned state from %s (%d edges)",
                state_dir,
                len(bundle.baseline.known_edges),
            )
            return bundle
    if settings.model is not None:
        return load_bundle(settings.model, settings.window)
    return None


def build_monitor(settings: Settings) -> Monitor:
    """The core as configured, resuming learned state or learning in progress."""
    bundle = initial_bundle(settings)
    from_state = bundle is not None and settings.state_dir is not None and settings.model is None
    mode = Mode.OBSERVE if from_state else Mode(settings.mode)
    monitor = Monitor(
        graph_limits(settings),
        detection_params(settings),
        mode,
        bundle,
        IdentityResolver(settings.trust_domain, settings.cluster_domain),
        EntryLimits(max_future=settings.max_clock_skew, max_age=settings.max_entry_age),
    )
    if bundle is None and settings.state_dir is not None:
        _resume_learning(monitor, settings.state_dir / STATE_LEARNING, settings.window)
    return monitor


def _resume_learning(monitor: Monitor, path: Path, window: float) -> None:
    doc = load_checkpoint(path)
    if doc is None:
        return
    if doc.get("window_seconds") != window:
        log.warning(
            "learning checkpoint %s was taken with %ss windows, not %ss: starting learning afresh",
            path,
            doc.get("window_seconds"),
            window,
        )
        return
    learning = Learning.from_doc(doc)
    monitor.engine.resume(learning)
    log.info(
        "resumed learning from %s: %d calls, %d edges, %d edge-windows",
        path,
        learning.calls,
        len(learning.edges),
        sum(len(r) for r in learning.rows.values()),
    )


class MonitorService:
    """Runs the core's window clock and turns its events into logs and figures."""

    def __init__(self, monitor: Monitor, settings: Settings) -> None:
        self.monitor = monitor
        self.settings = settings
        self.figures = ServiceFigures()
        self._promoting = False
        self._last_checkpoint = time.monotonic()
        self.subscribers: list[Callable[[Sequence[Event]], None]] = []
        """Who else hears the core's events (runtime defence)."""

    def publish(self, events: Sequence[Event]) -> None:
        """What each event means outside the core."""
        if events:
            for subscriber in self.subscribers:
                subscriber(events)
        for event in events:
            if isinstance(event, AnomalyRaised):
                doc = {"event": "anomaly", **anomaly_doc(event.anomaly)}
                alerts.warning(json.dumps(doc, default=str))
            elif isinstance(event, AnomalyEnded):
                log.info("anomaly %s ended", event.anomaly.id)
            elif isinstance(event, NodesMerged):
                log.info(
                    "identity %s is %s: merged %d edges",
                    event.old_id,
                    event.node.id,
                    event.edges_moved,
                )
            elif isinstance(event, BaselinePromoted):
                if event.card.calibration_note:
                    log.warning("promoted with a thin baseline: %s", event.card.calibration_note)
                log.info(
                    "now observing: %d known edges, threshold %.4f for %.2f false alerts/day",
                    event.known_edges,
                    event.card.threshold,
                    event.card.target_false_alerts_per_day,
                )
            elif isinstance(event, PromotionFailed):
                self.figures.promotion_failures += 1
                self.figures.last_promotion_error = event.reason
                log.warning("promotion is due but failed, still learning: %s", event.reason)

    async def run(self) -> None:
        """Close the window ending at ``B`` at wall time ``B + grace``, every ``window`` s.

        No window is skipped: if closing one ran long (a model fit, a slow scoring), the
        windows that ended meanwhile are closed at once, in order, as a replay would."""
        spec = self.monitor.window
        boundary = spec.next_boundary(time.time() - spec.grace)
        while True:
            await asyncio.sleep(max(0.0, boundary + spec.grace - time.time()))
            self.publish(await self.close_window(boundary))
            self.figures.last_window_end = boundary
            boundary += spec.window
            await self.checkpoint_if_due()

    async def close_window(self, end: float) -> list[Event]:
        """``Monitor.close_window``, with fitting and scoring in a worker thread."""
        monitor = self.monitor
        events: list[Event] = []
        # Read the window before a promotion: calls keep arriving while the model fits in a
        # thread, and the newest slices push the oldest out of each edge's ring. A replay
        # reads the window at its boundary; so must the live service, however long the fit.
        views = monitor.window_views(end)
        if monitor.promotion_due(end) and not self._promoting:
            try:
                await self.promote(end)
            except ModelError as exc:
                events.append(PromotionFailed(str(exc), end))
        work = monitor.open_window(end, views)
        scores = np.zeros(0)
        if work is not None:
            started = time.perf_counter()
            scores = await asyncio.to_thread(work.score)
            self.figures.scoring_seconds = time.perf_counter() - started
            self.figures.scored_windows += len(work.rows)
        events += monitor.finish_window(end, work, scores)
        return events

    async def promote(self, at: float | None = None) -> ModelBundle:
        """Learn → observe: fit off the event loop, then persist. ``ModelError`` (and still
        learning) when there is too little to learn from."""
        monitor = self.monitor
        plan = monitor.plan_promotion()
        log.info(
            "promoting the baseline: %d edge-windows, %d edges",
            len(plan.rows),
            len(plan.baseline.edges),
        )
        self._promoting = True
        try:
            bundle = await asyncio.to_thread(plan.fit)
        finally:
            self._promoting = False
        self.publish(monitor.adopt(bundle, time.time() if at is None else at))
        state_dir = self.settings.state_dir
        if state_dir is not None:
            paths = await asyncio.to_thread(save_bundle, bundle, state_dir / STATE_MODEL)
            await asyncio.to_thread(
                save_checkpoint,
                state_dir / STATE_FILE,
                {"mode": Mode.OBSERVE.value, "model": STATE_MODEL, "promoted_at": time.time()},
            )
            log.info("learned state saved: %s", ", ".join(str(p) for p in paths))
            (state_dir / STATE_LEARNING).unlink(missing_ok=True)
        return bundle

    async def approve(self, source: str, destination: str, port: int | None) -> list[str]:
        """Accept an edge as normal; persisted with the model when there is a state
        directory (otherwise it lasts until restart, and says so)."""
        events = self.monitor.approve(source, destination, port, time.time())
        self.publish(events)
        bundle = self.monitor.engine.bundle
        state_dir = self.settings.state_dir
        if bundle is not None and state_dir is not None:
            await asyncio.to_thread(save_bundle, bundle, state_dir / STATE_MODEL)
        elif bundle is not None:
            log.warning(
                "approved %s -> %s until restart: without --state-dir approvals are not saved",
                source,
                destination,
            )
        return [a.anomaly.id for a in events if isinstance(a, AnomalyEnded)]

    async def checkpoint_if_due(self) -> None:
        if time.monotonic() - self._last_checkpoint >= CHECKPOINT_SECONDS:
            await self.checkpoint()

    async def checkpoint(self) -> None:
        """Save learning in progress to the state directory (a failure is logged, not fatal)."""
        self._last_checkpoint = time.monotonic()
        state_dir = self.settings.state_dir
        engine = self.monitor.engine
        if state_dir is None or engine.mode is not Mode.LEARN or not engine.learning.calls:
            return
        doc = engine.learning.to_doc()
        doc["window_seconds"] = self.monitor.window.window
        doc["mode"] = Mode.LEARN.value
        try:
            size = await asyncio.to_thread(save_checkpoint, state_dir / STATE_LEARNING, doc)
        except OSError as exc:
            log.error("could not checkpoint learning to %s: %s", state_dir, exc)
            return
        log.debug("learning checkpoint: %d bytes", size)
