"""Learn what normal looks like, then flag what is not: the detection state machine.

Modes: ``learn`` (collect the baseline graph and feature history, no alerts) and ``observe``
(alert). Promotion builds the baseline and, unless a trained model was supplied, fits one.
Two detectors share one verdict stream:

* novel edges, checked when the graph creates an edge (so the per-call cost is nothing), the
  moment its first call is decoded;
* statistical, once per window, for edges with a baseline and enough traffic.

An edge that stays anomalous over consecutive windows is one incident, extended, not a new
alert each window. Memory is bounded: learning keeps a reservoir of rows per edge, and the
anomaly list keeps the newest ``max_anomalies``.
"""

from __future__ import annotations

import enum
import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from meshwatch.calls import Call, EdgeKey, WindowSpec
from meshwatch.detection.anomalies import Anomaly, AnomalyKind, Deviation, SampleCall
from meshwatch.detection.baseline import Baseline
from meshwatch.detection.explaining import explain, sustained
from meshwatch.detection.learning import Learning
from meshwatch.detection.models import (
    MIN_TRAINING_ROWS,
    ModelBundle,
    TrainingParams,
    build_baseline,
    normalised_matrix,
    train,
)
from meshwatch.detection.sequential import Cusum, Thresholds
from meshwatch.errors import ModelError
from meshwatch.features.baselines import EdgeBaseline
from meshwatch.features.describing import iso
from meshwatch.features.rows import FEATURE_COLUMNS, CallerLoad, WindowRow, window_row
from meshwatch.graph.mesh_graph import EdgeView
from meshwatch.graph.windows import WindowStats

MAX_MERGED_WINDOWS = 5


def _thresholds(bundle: ModelBundle | None) -> Thresholds:
    if bundle is None:
        return Thresholds()
    return Thresholds(bundle.card.sequential_threshold, bundle.card.volume_threshold)


@dataclass(slots=True)
class _Pending:
    """A quiet edge's windows merged until they hold ``min_requests`` calls."""

    stats: WindowStats
    windows: int = 0
    outbound: int = 0
    inbound: int = 0


class Mode(enum.StrEnum):
    LEARN = "learn"
    OBSERVE = "observe"


@dataclass(frozen=True, slots=True)
class DetectionParams:
    window: WindowSpec = field(default_factory=WindowSpec)
    min_requests: int = 5
    cooldown_windows: int = 2
    max_anomalies: int = 10_000
    top_deviations: int = 3
    min_baseline_windows: int = 10
    """An edge is judged statistically only once its baseline holds this many windows..."""
    min_baseline_calls: int = 50
    """...and this many calls; until then it is "warming up" (novel-edge rule only)."""
    learn_for: float | None = None  # seconds from the first window with traffic (our clock)
    learn_calls: int | None = None
    training: TrainingParams = field(default_factory=TrainingParams)


@dataclass(frozen=True, slots=True)
class PromotionPlan:
    """Everything fitting a model needs, frozen at the moment promotion was decided."""

    name: str
    rows: tuple[WindowRow, ...]
    baseline: Baseline
    window_seconds: float
    training: TrainingParams

    def fit(self) -> ModelBundle:
        """Fit and calibrate (CPU-bound, pure: safe in a worker thread)."""
        return train(self.name, self.rows, self.baseline, self.window_seconds, self.training)


class DetectionEngine:
    """Owned by the event loop; only ``ModelBundle.anomaly_scores`` runs in a worker thread."""

    def __init__(
        self, params: DetectionParams, mode: Mode, bundle: ModelBundle | None = None
    ) -> None:
        if (
            mode is Mode.OBSERVE
            and bundle is None
            and params.learn_for is None
            and params.learn_calls is None
        ):
            raise ModelError(
                "observe mode needs a model (--model) or a learning period (--learn-for)"
            )
        self.params = params
        self.bundle = bundle
        self.mode = Mode.OBSERVE if bundle is not None and mode is Mode.OBSERVE else Mode.LEARN
        self.target_mode = mode
        self.learning = Learning()
        self.anomalies: deque[Anomaly] = deque(maxlen=params.max_anomalies)
        self.open: dict[EdgeKey, tuple[Anomaly, float]] = {}
        self.last_scores: dict[EdgeKey, float] = {}
        self._sparse: dict[EdgeKey, _Pending] = {}
        self.cusum = Cusum(_thresholds(bundle))
        self.counts: Counter[str] = Counter()
        self._seq = 0

    # -- traffic ------------------------------------------------------------------------

    def on_calls(self, calls: Sequence[Call]) -> None:
        if self.mode is Mode.LEARN:
            self.learning.calls += len(calls)

    def on_new_edge(self, edge: EdgeKey, first_call: Call) -> Anomaly | None:
        """The deterministic check, at the edge's first call."""
        if self.mode is Mode.LEARN:
            self.learning.edges.add(edge)
            self.learning.meet(first_call)
            return None
        assert self.bundle is not None
        if not self.bundle.baseline.is_novel(edge):
            return None
        learned = self.bundle.baseline.learned_until
        anomaly = self._new(
            AnomalyKind.NEW_EDGE,
            edge,
            math.inf,
            math.inf,
            first_call.time,
            reason=f"edge {edge} was never seen while learning (baseline up to {iso(learned)})",
            samples=[SampleCall.of(first_call)],
        )
        self.open[edge] = (anomaly, first_call.time)
        return anomaly

    # -- windows ------------------------------------------------------------------------

    def window_rows(
        self, views: Sequence[EdgeView], end: float
    ) -> tuple[list[WindowRow], np.ndarray]:
        """Feature rows of the window ending at ``end``. While learning they are kept, and
        nothing is returned to score; when observing, the normalised matrix is returned."""
        w = self.params.window.window
        # The load on each caller, over the edges it is known to use: a novel edge is already
        # an anomaly of its own, and must not also shift the shares of the caller's known edges.
        known = None if self.bundle is None else self.bundle.baseline
        outbound: Counter[str] = Counter()
        inbound: Counter[str] = Counter()
        for v in views:
            if v.stats.requests and (known is None or not known.is_novel(v.key)):
                outbound[v.key.source] += v.stats.requests
                inbound[v.key.destination] += v.stats.requests
        if self.mode is Mode.LEARN:
            if self.learning.started is None and any(v.stats.requests for v in views):
                # Learning starts with the first window that held traffic, on the driver's
                # clock (window boundaries), never at a time an entry claims: one entry dated
                # 1970 must not end learning at once. Live and replay agree on that window.
                self.learning.started = end - w
            for v in views:
                if v.stats.requests:
                    key = v.key
                    self.learning.edges.add(key)
                    dense = self._dense(key, v.stats, outbound, inbound)
                    if dense is not None:
                        stats, count, load = dense
                        row = window_row(key, stats, end, w * count, None, load)
                        self.learning.add(row, stats.paths)
            return [], np.zeros((0, len(FEATURE_COLUMNS)))
        assert self.bundle is not None
        baseline = self.bundle.baseline
        rows = []
        for v in views:
            key = v.key
            if v.stats.requests and baseline.is_novel(key):
                self._novel_still_active(key, v, end)
                continue
            if not v.stats.requests:
                continue
            edge_baseline = baseline.edges.get(key)
            dense = self._dense(key, v.stats, outbound, inbound)
            if dense is None:
                continue
            stats, count, load = dense
            if edge_baseline is None or not self._ready(edge_baseline):
                # Warming up: too little learned evidence on this edge for a statistical
                # verdict; only the novel-edge rule covers it. Its baseline never grows from
                # traffic seen after promotion (an attacker must not be able to teach it):
                # learning longer, or retraining, is what ends warming up.
                continue
            rows.append(window_row(key, stats, end, w * count, edge_baseline.paths, load))
        return rows, normalised_matrix(rows, baseline)

    def _ready(self, edge: EdgeBaseline) -> bool:
        """Enough learned evidence on this edge for a statistical verdict."""
        p = self.params
        return edge.windows >= p.min_baseline_windows and edge.calls >= p.min_baseline_calls

    def _dense(
        self, edge: EdgeKey, stats: WindowStats, outbound: Counter[str], inbound: Counter[str]
    ) -> tuple[WindowStats, int, CallerLoad] | None:
        """What to score for an edge now: its window when it has ``min_requests`` calls, else
        that window merged with its previous sparse ones (up to ``MAX_MERGED_WINDOWS``) once
        together they do. Quiet edges are judged on enough evidence instead of never, or on
        noise; the statistics merge exactly (counts, sums, sketches), and so does the load on
        the caller over the same windows. (Too little caller load only blanks the
        volume-to-load ratios, see ``window_row``.)"""
        out, into = outbound[edge.source], inbound[edge.source]
        pending = self._sparse.pop(edge, None)
        if pending is None and stats.requests >= self.params.min_requests:
            return stats, 1, CallerLoad(out, into)
        if pending is None:
            pending = _Pending(WindowStats())
        pending.stats.merge(stats)
        pending.windows += 1
        pending.outbound += out
        pending.inbound += into
        if pending.stats.requests >= self.params.min_requests:
            return pending.stats, pending.windows, CallerLoad(pending.outbound, pending.inbound)
        if pending.windows < MAX_MERGED_WINDOWS:
            self._sparse[edge] = pending
        return None

    def _novel_still_active(self, edge: EdgeKey, view: EdgeView, end: float) -> None:
        """A never-seen edge with traffic this window: extend its incident, or open a new one
        if it went quiet for longer than the cooldown (the first call of an edge is caught at
        decode time; this catches an unapproved edge coming back)."""
        current = self.open.get(edge)
        horizon = end - (self.params.cooldown_windows + 1) * self.params.window.window - 1e-6
        if current is not None and current[1] >= horizon:
            current[0].windows += 1
            current[0].last_seen = end
            self.open[edge] = (current[0], end)
            return
        samples = [SampleCall.of(c) for c in view.samples]
        start = end - self.params.window.window
        first = min((c.time for c in view.samples if c.time >= start), default=end)
        anomaly = self._new(
            AnomalyKind.NEW_EDGE,
            edge,
            math.inf,
            math.inf,
            first,
            reason=f"edge {edge} is not in the baseline and is active again",
            samples=samples,
        )
        self.open[edge] = (anomaly, end)

    def decide(
        self,
        rows: Sequence[WindowRow],
        scores: np.ndarray,
        views: Sequence[EdgeView],
        end: float,
        matrix: np.ndarray,
    ) -> list[Anomaly]:
        """Compare scores with the threshold; explain and classify what crosses it; open or
        extend incidents (one per edge and kind)."""
        if self.bundle is None:
            return []
        bundle = self.bundle
        threshold = bundle.threshold
        samples = {v.key: v.samples for v in views}
        self.last_scores = {r.edge: float(s) for r, s in zip(rows, scores, strict=True)}
        fresh: list[Anomaly] = []
        horizon = end - self.params.cooldown_windows * self.params.window.window - 1e-6
        for row, score, x in zip(rows, scores, matrix, strict=True):
            edge_baseline = bundle.baseline.edges[row.edge]
            drift = self.cusum.update(row, x, edge_baseline)
            if threshold.is_anomalous(float(score)):
                verdict = explain(
                    row, x, edge_baseline, bundle.anomaly_scores, self.params.top_deviations
                )
            elif drift is not None:
                verdict = sustained(drift, row, edge_baseline)
            else:
                continue
            current = self.open.get(row.edge)
            if current is not None and current[1] >= horizon and current[0].kind is verdict.kind:
                anomaly = current[0]
                anomaly.windows += 1
                anomaly.last_seen = end
                anomaly.score = max(anomaly.score, float(score))
                self.open[row.edge] = (anomaly, end)
                continue
            anomaly = self._new(
                verdict.kind,
                row.edge,
                float(score),
                threshold.value,
                end,
                reason=f"window ending {iso(end)}: {verdict.reason}",
                samples=[SampleCall.of(c) for c in samples.get(row.edge, ())],
                deviations=verdict.deviations,
            )
            self.open[row.edge] = (anomaly, end)
            fresh.append(anomaly)
        return fresh

    def expire_incidents(self, end: float) -> list[Anomaly]:
        """Close the incidents that saw no anomalous window for ``cooldown_windows``."""
        horizon = end - self.params.cooldown_windows * self.params.window.window - 1e-6
        ended = [edge for edge, (_, t) in self.open.items() if t < horizon]
        return [self.open.pop(edge)[0] for edge in ended]

    def _new(
        self,
        kind: AnomalyKind,
        edge: EdgeKey,
        score: float,
        threshold: float,
        at: float,
        reason: str,
        samples: list[SampleCall],
        deviations: list[Deviation] | None = None,
    ) -> Anomaly:
        self._seq += 1
        anomaly = Anomaly(
            id=f"{kind.value}-{self._seq}",
            kind=kind,
            source=edge.source,
            target=edge.destination,
            port=edge.port,
            score=score,
            threshold=threshold,
            first_seen=at,
            last_seen=at,
            reason=reason,
            deviations=deviations or [],
            samples=samples,
        )
        self.anomalies.appendleft(anomaly)
        self.counts[kind.value] += 1
        return anomaly

    # -- learning -> observing ----------------------------------------------------------

    def should_promote(self, now: float) -> bool:
        if self.mode is not Mode.LEARN or self.target_mode is not Mode.OBSERVE:
            return False
        started = self.learning.started
        if (
            self.params.learn_for is not None
            and started is not None
            and now - started >= self.params.learn_for
        ):
            return True
        return (
            self.params.learn_calls is not None and self.learning.calls >= self.params.learn_calls
        )

    def learned_rows(self) -> list[WindowRow]:
        return [r for rows in self.learning.rows.values() for r in rows]

    def resume(self, learning: Learning) -> None:
        """Continue learning from a checkpoint (only while learning)."""
        if self.mode is Mode.LEARN:
            self.learning = learning

    def plan_promotion(self, name: str = "learned") -> PromotionPlan:
        """Freeze what was learned into a plan to fit (``ModelError`` when there is too little
        to learn from; learning then simply goes on). The plan is immutable, so the live
        service can fit it in a worker thread while this engine keeps learning."""
        rows = self.learned_rows()
        if len(rows) < MIN_TRAINING_ROWS:
            edges = len(self.learning.rows)
            raise ModelError(
                f"only {len(rows)} edge-windows learned so far ({edges} edges, "
                f"{self.learning.calls} calls); need at least {MIN_TRAINING_ROWS}"
            )
        baseline = build_baseline(
            rows, self.learning.paths, self.learning.edges, self.learning.calls
        )
        baseline.actors = dict(self.learning.actors)
        return PromotionPlan(
            name, tuple(rows), baseline, self.params.window.window, self.params.training
        )

    def adopt(self, bundle: ModelBundle) -> None:
        """Switch to observing with ``bundle`` (learning state is dropped)."""
        self.bundle = bundle
        self.cusum = Cusum(_thresholds(bundle))
        self.mode = Mode.OBSERVE
        self.target_mode = Mode.OBSERVE
        self.learning = Learning()
        self._sparse.clear()

    def promote(self, name: str = "learned") -> ModelBundle:
        """Plan, fit and adopt in one step (replay; the live service fits in a thread)."""
        bundle = self.plan_promotion(name).fit()
        self.adopt(bundle)
        return bundle

    def approve(
        self, edges: Sequence[EdgeKey], pair: tuple[str, str] | None = None
    ) -> list[Anomaly]:
        """Accept edges as normal: they join the known edges (no novel-edge alert again) and
        their open incidents close; ``pair`` accepts a caller and callee on every port.
        Returns the incidents closed. Only when observing."""
        if self.bundle is None:
            return []
        if pair is not None:
            self.bundle.baseline.approved.add(pair)
        closed = []
        for edge in edges:
            self.bundle.baseline.known_edges.add(edge)
            current = self.open.pop(edge, None)
            if current is not None:
                closed.append(current[0])
        return closed

    def edge_status(self, edge: EdgeKey) -> tuple[str, float | None]:
        """(status, last score) for the graph API: ``new``, ``anomalous`` (security),
        ``degraded`` (performance), ``warming-up`` (known, baseline too thin to judge) or
        ``normal``."""
        current = self.open.get(edge)
        if current is not None:
            kind = current[0].kind
            status = {AnomalyKind.NEW_EDGE: "new", AnomalyKind.PERFORMANCE: "degraded"}.get(
                kind, "anomalous"
            )
            return status, self.last_scores.get(edge)
        if self.mode is Mode.OBSERVE and self.bundle is not None:
            baseline = self.bundle.baseline
            if baseline.is_novel(edge):
                return "new", None
            learned = baseline.edges.get(edge)
            if learned is None or not self._ready(learned):
                return "warming-up", None
        return "normal", self.last_scores.get(edge)
