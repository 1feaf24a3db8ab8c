"""Detection engine behaviour on hand-made call streams through the replay (live) code path."""

from __future__ import annotations

import math

import pytest

from meshwatch.calls import Call, EdgeKey, WindowSpec, Workload
from meshwatch.detection.anomalies import Anomaly, AnomalyKind
from meshwatch.detection.engine import DetectionEngine, DetectionParams, Mode
from meshwatch.detection.models import TrainingParams
from meshwatch.errors import ModelError
from meshwatch.monitor.core import Monitor
from meshwatch.monitor.events import Event
from meshwatch.monitor.replaying import Replayer, raised, replay_monitor
from tests.factories import make_call, workload

T0 = 1_767_571_200.0


def wl(app: str, version: str = "v1") -> Workload:
    return workload(app, "shop", version)


def traffic(start: float, seconds: int, per_second: int = 2, **overrides: object) -> list[Call]:
    out = []
    for s in range(seconds):
        for k in range(per_second):
            t = start + s + k / per_second
            src = overrides.get("source", wl("web"))
            dst = overrides.get("target", wl("cart", "v2" if s % 600 > 300 else "v1"))  # rollouts
            out.append(
                make_call(
                    t,
                    src,
                    dst,
                    port=8080,
                    path=f"/cart/{(s * 7 + k) % 97}",
                    status=int(overrides.get("status", 200)),
                    sent=120,
                    received=int(overrides.get("received", 900)),
                    ms=5.0 + (s % 5),
                )
            )
    return out


class Replay:
    """A monitor core driven by replay, answering anomalies rather than all events."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.replayer = Replayer(monitor)
        self.events: list[Event] = []

    def feed(self, calls: list[Call]) -> list[Anomaly]:
        events = self.replayer.feed(calls)
        self.events += events
        return raised(events)


def learned(hours: float = 3) -> tuple[Monitor, DetectionEngine, Replay]:
    monitor = replay_monitor(
        DetectionParams(
            window=WindowSpec(60), learn_for=hours * 3600, training=TrainingParams(n_estimators=50)
        ),
        Mode.OBSERVE,
    )
    replay = Replay(monitor)
    replay.feed(traffic(T0, int(hours * 3600) + 120))
    assert monitor.engine.mode is Mode.OBSERVE
    return monitor, monitor.engine, replay


def test_learning_then_a_never_seen_edge_alerts_at_its_first_call() -> None:
    _, engine, replayer = learned()
    t = T0 + 4 * 3600
    attack = [
        make_call(
            t + 0.25,
            wl("web"),
            wl("payments"),
            port=50051,
            method="POST",
            path="/charge",
            sent=80,
            received=40,
            ms=3.0,
        )
    ]
    found = replayer.feed(traffic(t - 30, 30) + attack)
    (anomaly,) = [a for a in found if a.kind is AnomalyKind.NEW_EDGE]
    assert anomaly.edge == EdgeKey("shop/web", "shop/payments", 50051)
    assert anomaly.first_seen == t + 0.25  # the moment its first call is decoded
    assert anomaly.samples[0].path == "/charge"
    assert "never seen while learning" in anomaly.reason
    assert engine.edge_status(anomaly.edge)[0] == "new"


def test_a_rollout_or_new_replica_of_a_known_workload_is_not_a_new_actor() -> None:
    _, engine, replayer = learned()
    t = T0 + 4 * 3600
    v3 = traffic(t, 600, target=wl("cart", "v3"))
    found = replayer.feed(v3)
    assert [a for a in found if a.kind is AnomalyKind.NEW_EDGE] == []
    assert engine.counts["new-edge"] == 0


def test_an_error_storm_is_a_statistical_anomaly_that_explains_itself_as_one_incident() -> None:
    _, _, replayer = learned()
    t = T0 + 4 * 3600
    replayer.feed(traffic(t, 600))
    found = replayer.feed(traffic(t + 600, 300, status=503))
    statistical = [a for a in found if a.kind is AnomalyKind.STATISTICAL]
    assert len(statistical) == 1, "consecutive anomalous windows are one incident"
    anomaly = statistical[0]
    assert anomaly.windows >= 3
    assert anomaly.score >= anomaly.threshold
    assert anomaly.deviations[0].feature == "ratio_5xx"
    assert anomaly.deviations[0].value > anomaly.deviations[0].baseline_p99
    assert {s.status for s in anomaly.samples} == {503}
    assert not math.isinf(anomaly.threshold)


def test_promotion_needs_enough_history() -> None:
    monitor = replay_monitor(DetectionParams(window=WindowSpec(60)), Mode.LEARN)
    Replay(monitor).feed(traffic(T0, 300))
    with pytest.raises(ModelError, match="need at least"):
        monitor.engine.promote()
    assert monitor.engine.mode is Mode.LEARN


def test_observe_without_model_or_learning_period_is_refused() -> None:
    with pytest.raises(ModelError, match="needs a model"):
        DetectionEngine(DetectionParams(), Mode.OBSERVE)


def test_quiet_edges_are_scored_over_merged_windows() -> None:
    monitor = replay_monitor(DetectionParams(window=WindowSpec(60), min_requests=5), Mode.LEARN)
    engine = monitor.engine
    replayer = Replay(monitor)
    sparse = [
        c for c in traffic(T0, 3600, per_second=1) if int(c.time) % 30 == 0
    ]  # 2 calls a minute
    replayer.feed(sparse)
    rows = engine.learned_rows()
    assert rows, "sparse windows are merged until they hold min_requests calls"
    assert all(r.requests >= 5 for r in rows)
