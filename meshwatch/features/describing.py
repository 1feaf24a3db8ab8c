"""Features in the units people read: requests/s, %, bytes per request, ms, paths.

The model works in log units and smoothed ratios; an operator reads "3.1 req/s (learned
0.8-1.2)". Every column has one rendering here, used by anomaly reasons and the API.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime


def _per_second(v: float) -> float:
    return math.expm1(v) / 60.0  # log1p(requests per minute)


def _exp(v: float) -> float:
    return math.expm1(v)


def _percent(v: float) -> float:
    return 100.0 * v


def _plain(v: float) -> float:
    return v


def _fanout(v: float) -> float:
    return math.exp(v)


# column: (label, unit, conversion from the raw feature value)
_RENDER: Mapping[str, tuple[str, str, Callable[[float], float]]] = {
    "log_rate": ("requests", "req/s", _per_second),
    "ratio_5xx": ("5xx", "%", _percent),
    "ratio_4xx": ("4xx", "%", _percent),
    "log_bytes_sent_per_req": ("request size", "B/request", _exp),
    "log_bytes_received_per_req": ("response size", "B/request", _exp),
    "log_latency_p50": ("latency p50", "ms", _exp),
    "log_latency_p99": ("latency p99", "ms", _exp),
    "distinct_paths": ("distinct paths", "paths", _plain),
    "unseen_path_share": ("requests to paths never seen", "%", _percent),
    "distinct_methods": ("distinct methods", "methods", _plain),
    "edge_share": ("share of the caller's calls", "%", _percent),
    "log_fanout": ("calls per request the caller serves", "per request", _fanout),
}


def iso(t: float) -> str:
    """Epoch seconds → RFC 3339 / ISO 8601 UTC with milliseconds (``""`` when out of range)."""
    try:
        stamp = datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def label(column: str) -> str:
    return _RENDER[column][0] if column in _RENDER else column


def human(column: str, value: float) -> float:
    """The raw feature value in the column's reading unit."""
    if column not in _RENDER:
        return value
    try:
        return _RENDER[column][2](value)
    except OverflowError:
        return math.inf


def _number(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    if abs(x) >= 10 or x == int(x):
        return f"{x:,.0f}"
    return f"{x:.2g}"


def fmt(column: str, value: float) -> str:
    """``3.1 req/s``, ``45 %``, ``12,400 B/request``."""
    unit = _RENDER[column][1] if column in _RENDER else ""
    shown = _number(human(column, value))
    return f"{shown} %" if unit == "%" else f"{shown} {unit}".rstrip()


def fmt_range(column: str, low: float, high: float) -> str:
    """``learned 0.8-1.2 req/s``."""
    unit = _RENDER[column][1] if column in _RENDER else ""
    lo, hi = _number(human(column, low)), _number(human(column, high))
    span = lo if lo == hi else f"{lo} to {hi}"
    return f"learned {span} %" if unit == "%" else f"learned {span} {unit}".rstrip()
