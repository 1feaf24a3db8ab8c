"""No statistical verdict without evidence: thin baselines warm up, thin calibrations fall back
to a conservative threshold and say so."""

from __future__ import annotations

from meshwatch.calls import WindowSpec
from meshwatch.detection.anomalies import AnomalyKind
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.detection.models import TrainingParams
from meshwatch.monitor.replaying import replay_monitor
from tests.monitor.test_engine import T0, Replay, learned, traffic


def test_a_thin_calibration_says_so_and_falls_back_to_a_conservative_threshold() -> None:
    _, engine, _ = learned(hours=3)  # one edge, 3 h: far too few windows for 1 alert/day
    assert engine.bundle is not None
    note = engine.bundle.card.calibration_note
    assert "held-out windows" in note and "conservative fallback" in note


def test_an_edge_with_a_thin_baseline_warms_up_before_any_statistical_verdict() -> None:
    params = DetectionParams(
        window=WindowSpec(60, 6, grace=0),
        learn_for=3 * 3600,
        min_baseline_windows=200,  # more than the 180 windows learned
        training=TrainingParams(n_estimators=50),
    )
    monitor = replay_monitor(params, Mode.OBSERVE)
    replay = Replay(monitor)
    replay.feed(traffic(T0, 3 * 3600 + 120))
    edge = next(iter(monitor.engine.bundle.baseline.known_edges))  # type: ignore[union-attr]
    assert monitor.edge_status(edge)[0] == "warming-up"
    t = T0 + 3 * 3600 + 120
    storm = replay.feed(traffic(t, 600, status=503))
    assert [a for a in storm if a.kind is not AnomalyKind.NEW_EDGE] == []
    assert monitor.edge_status(edge)[0] == "warming-up"
    replay.feed(traffic(t + 600, 200 * 60))  # observed traffic never teaches the baseline
    assert monitor.edge_status(edge)[0] == "warming-up"
