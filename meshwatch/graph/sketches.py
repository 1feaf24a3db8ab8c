"""A mergeable quantile sketch with bounded relative error (the DDSketch construction).

Values land in logarithmic buckets ``ceil(log_gamma(v))`` with ``gamma = (1+a)/(1-a)``, so every
quantile it reports is within relative error ``a`` of a true sample value. Two sketches merge
by adding bucket counts, which is what lets several receivers feed one scorer. Memory is the
number of occupied buckets: with ``a = 1%`` a range of 1 µs to 1 h needs at most ~1,100, and
``max_buckets`` caps it further by folding the lowest buckets together (low latencies lose
precision first; the tail, which alerts care about, keeps it).

Written here rather than taken from the ``ddsketch`` package because this runs once per call
on the ingest hot path: one ``log``, one dict update, no objects allocated.
"""

from __future__ import annotations

import math

DEFAULT_ACCURACY = 0.01
MIN_VALUE = 1e-3  # values at or below this (ms) count in the zero bucket


class QuantileSketch:
    """Quantile sketch for non-negative values (latencies in ms)."""

    __slots__ = ("_gamma", "accuracy", "buckets", "count", "inv_log_gamma", "max_buckets", "zero")

    def __init__(self, accuracy: float = DEFAULT_ACCURACY, max_buckets: int = 2048) -> None:
        if not 0 < accuracy < 1:
            raise ValueError("accuracy must be in (0, 1)")
        self.accuracy = accuracy
        self._gamma = (1 + accuracy) / (1 - accuracy)
        self.inv_log_gamma = 1.0 / math.log(self._gamma)
        self.max_buckets = max_buckets
        self.buckets: dict[int, int] = {}
        self.zero = 0
        self.count = 0

    def add(self, value: float) -> None:
        """Record one value."""
        self.count += 1
        if value <= MIN_VALUE:
            self.zero += 1
            return
        key = math.ceil(math.log(value) * self.inv_log_gamma)
        buckets = self.buckets
        buckets[key] = buckets.get(key, 0) + 1
        if len(buckets) > self.max_buckets:
            self.collapse()

    def merge(self, other: QuantileSketch) -> None:
        """Add another sketch's counts into this one (same accuracy required)."""
        if other.accuracy != self.accuracy:
            raise ValueError("cannot merge sketches of different accuracy")
        self.count += other.count
        self.zero += other.zero
        buckets = self.buckets
        for key, n in other.buckets.items():
            buckets[key] = buckets.get(key, 0) + n
        if len(buckets) > self.max_buckets:
            self.collapse()

    def quantile(self, q: float) -> float:
        """The q-quantile (0..1), or ``nan`` when empty."""
        if self.count == 0:
            return math.nan
        rank = q * (self.count - 1)
        seen = self.zero
        if rank < seen:
            return 0.0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen > rank:
                # midpoint of the bucket (gamma^(k-1), gamma^k] in the relative sense
                return 2 * self._gamma**key / (self._gamma + 1)
        return 2 * self._gamma ** max(self.buckets) / (self._gamma + 1)

    def collapse(self) -> None:
        """Fold the lowest buckets together until at most ``max_buckets`` remain."""
        keys = sorted(self.buckets)
        excess = len(keys) - self.max_buckets
        target = keys[excess]
        folded = sum(self.buckets.pop(k) for k in keys[:excess])
        self.buckets[target] += folded
