"""Feature rows from an edge's window statistics.

Raw features describe the window in units that are comparable across windows of the same
edge: a log rate, error ratios, log bytes per request, log latency quantiles, path and method
counts, the share of requests to paths the baseline never saw, and the time of day.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from meshwatch.calls import EdgeKey
from meshwatch.graph.windows import WindowStats

FEATURE_COLUMNS: tuple[str, ...] = (
    "log_rate",
    "ratio_5xx",
    "ratio_4xx",
    "log_bytes_sent_per_req",
    "log_bytes_received_per_req",
    "log_latency_p50",
    "log_latency_p99",
    "distinct_paths",
    "unseen_path_share",
    "distinct_methods",
    "edge_share",
    "log_fanout",
    "hour_sin",
    "hour_cos",
)
"""The one place the column order is defined. Models record it in their card."""

TIME_COLUMNS = frozenset({"hour_sin", "hour_cos"})
LATENCY_COLUMNS = frozenset({"log_latency_p50", "log_latency_p99"})
"""Latency shifts with load, noisy neighbours and deployments: on its own it is performance,
never security (an anomaly out of range only in these is kind ``performance``)."""
EDGE_COLUMNS = tuple(c for c in FEATURE_COLUMNS if c not in TIME_COLUMNS)
FEATURE_VERSION = 3
"""Bumped whenever a feature's meaning or normalisation changes: old models are then refused.
2: bytes-per-request floors lowered to 0.3 (a 2.5x payload change now stands out).
3: load-normalised volume (``edge_share``, ``log_fanout``); baselines keep a low quantile."""
MIN_CALLER_LOAD = 10
RATIO_PSEUDO_COUNT = 10
"""Error ratios are e / (n + 10): one 404 among four requests at night is not a 25 % error
rate. Large windows are barely affected (15 errors in 30 requests still reads 0.375)."""


@dataclass(frozen=True, slots=True)
class CallerLoad:
    """The load on an edge's caller in the same window(s): what drives the edge's volume.

    Request volume follows the users' load, so absolute rate is weak against an attacker who
    runs 2-3x the normal rate with normal-looking requests. The edge's share of its caller's
    outbound calls and its calls per inbound request of the caller stay stable under diurnal
    load and shift when a compromised caller makes extra calls.
    """

    outbound: int  # requests on all edges leaving the caller
    inbound: int  # requests on all edges arriving at the caller


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One edge-window: its raw feature values, in ``FEATURE_COLUMNS`` order."""

    edge: EdgeKey
    end: float
    values: tuple[float, ...]
    requests: int
    caller_inbound: int = 0  # requests the caller served in the same window(s)

    def value(self, column: str) -> float:
        return self.values[FEATURE_COLUMNS.index(column)]


def _log(x: float) -> float:
    return math.log1p(max(0.0, x))


def window_row(
    edge: EdgeKey,
    stats: WindowStats,
    end: float,
    window_seconds: float,
    known_paths: Collection[str] | None,
    load: CallerLoad,
) -> WindowRow:
    """The raw features of one edge over one window ending at ``end`` (epoch seconds).

    ``known_paths`` is the edge's baseline path set; ``None`` while learning, when every path
    the edge uses is by definition part of what it normally does (share 0).
    """
    n = stats.requests
    per = 1.0 / n if n else 0.0
    # A ratio of two counts of three is noise: below MIN_CALLER_LOAD the volume-to-load
    # ratios are unknown (NaN), read as the edge's median when scored.
    share = n / load.outbound if load.outbound >= max(n, 1) else 1.0
    if load.outbound < MIN_CALLER_LOAD:
        share = math.nan
    if not load.inbound:
        # an entry point (a gateway, a job) serves no requests: nothing drives it but its
        # own schedule, so its fan-out is neutral rather than a copy of its diurnal rate
        fanout = 0.0
    elif load.inbound < MIN_CALLER_LOAD:
        fanout = math.nan
    else:
        fanout = math.log((n + 1) / (load.inbound + 1))
    smoothed = 1.0 / (n + RATIO_PSEUDO_COUNT)
    unseen = (
        0 if known_paths is None else sum(c for p, c in stats.paths.items() if p not in known_paths)
    )
    hour = (end % 86400) / 3600.0
    angle = 2 * math.pi * hour / 24.0
    p50 = stats.latency.quantile(0.5) if n else 0.0
    p99 = stats.latency.quantile(0.99) if n else 0.0
    values = (
        _log(n / window_seconds * 60.0),  # requests per minute
        stats.errors_5xx * smoothed,
        stats.errors_4xx * smoothed,
        _log(stats.bytes_sent * per),
        _log(stats.bytes_received * per),
        _log(p50),
        _log(p99),
        float(len(stats.paths)),
        unseen * per if stats.paths else 0.0,
        float(len(stats.methods)),
        share,
        fanout,
        math.sin(angle),
        math.cos(angle),
    )
    return WindowRow(edge, end, values, n, load.inbound)
