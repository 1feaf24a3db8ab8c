"""Reasons name only what is outside the edge's learned range, in units people read; latency
alone is performance, never security."""

from __future__ import annotations

import math

import numpy as np

from meshwatch.calls import EdgeKey
from meshwatch.detection.anomalies import AnomalyKind
from meshwatch.detection.explaining import explain
from meshwatch.features.baselines import BaselineBuilder
from meshwatch.features.rows import FEATURE_COLUMNS, WindowRow

EDGE = EdgeKey("shop/web", "shop/cart", 8080)


def _row(**raw: float) -> WindowRow:
    base = {c: 0.0 for c in FEATURE_COLUMNS}
    base.update(
        log_rate=math.log1p(60.0),  # 1 req/s
        log_bytes_sent_per_req=math.log1p(300),
        log_bytes_received_per_req=math.log1p(2000),
        log_latency_p50=math.log1p(5),
        log_latency_p99=math.log1p(20),
        distinct_paths=4.0,
        distinct_methods=1.0,
        edge_share=0.5,
    )
    base.update(raw)
    return WindowRow(EDGE, 1000.0, tuple(base[c] for c in FEATURE_COLUMNS), 60, 60)


def _baseline():  # type: ignore[no-untyped-def]
    builder = BaselineBuilder()
    rng = np.random.default_rng(3)
    for _ in range(200):
        builder.add(
            _row(
                log_rate=math.log1p(60.0 * rng.uniform(0.8, 1.2)),
                log_latency_p99=math.log1p(20 * rng.uniform(0.8, 1.2)),
            ),
            {"/cart/{num}"},
        )
    return builder.build()[EDGE]


def _explain(row: WindowRow):  # type: ignore[no-untyped-def]
    baseline = _baseline()
    x = np.array(baseline.normalise(row))
    return explain(row, x, baseline, lambda m: np.abs(m).sum(axis=1), top=3)


def test_latency_alone_out_of_range_is_performance_in_milliseconds() -> None:
    verdict = _explain(_row(log_latency_p99=math.log1p(80)))
    assert verdict.kind is AnomalyKind.PERFORMANCE and not verdict.kind.security
    assert [d.feature for d in verdict.deviations] == ["log_latency_p99"]
    assert "latency p99 80 ms (learned" in verdict.reason and "ms)" in verdict.reason


def test_only_features_outside_the_learned_range_are_named_in_their_units() -> None:
    verdict = _explain(_row(log_rate=math.log1p(300.0), log_latency_p99=math.log1p(80)))
    assert verdict.kind is AnomalyKind.STATISTICAL
    assert [d.feature for d in verdict.deviations] == ["log_rate", "log_latency_p99"]
    assert verdict.reason.startswith("requests 5 req/s (learned 0.7 to 1.4 req/s); latency p99")
    assert "log_" not in verdict.reason and "bytes" not in verdict.reason


def test_an_unusual_combination_names_its_drivers() -> None:
    verdict = _explain(_row(log_rate=math.log1p(70.0), log_latency_p99=math.log1p(23)))
    assert verdict.reason.startswith("unusual combination, no single feature outside")
    assert verdict.deviations and not any(d.out_of_range for d in verdict.deviations)
    assert verdict.deviations[0].feature in ("log_rate", "log_latency_p99")
