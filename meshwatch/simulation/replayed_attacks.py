"""Attacks written into recorded calls, for tuning on a real capture.

``meshwatch evaluate`` injects attacks into simulated traffic; a capture of your own mesh has
no simulator behind it. This applies the same attacks, with the same sizes, to the calls of
one known edge of a recording over ``[start, end)``, so the attacked recording can be replayed
through the monitor core like any other: the windows, features and scores a model sees are
the ones ``serve`` would compute. Pure and seeded.

- path enumeration: probes of unseen admin paths (mostly 4xx) at 9x the edge's own rate
  (1.5x low-and-slow), as ``Simulator`` sends them;
- exfiltration: each response 100x larger (2.5x);
- error storm: half the calls answered 503 (low-and-slow: 2.5x the edge's error rate + 1 %);
- volume: 10x the edge's calls (3x), each a copy of a real one a little later.

Novel edges need no tuning: they are flagged deterministically, whatever the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from meshwatch.calls import Call, EdgeKey
from meshwatch.simulation.traffic import AttackKind, enumeration_probe

TUNABLE = (
    AttackKind.ENUMERATION,
    AttackKind.EXFILTRATION,
    AttackKind.ERROR_STORM,
    AttackKind.VOLUME,
)


def _edge_calls(calls: Sequence[Call], edge: EdgeKey, start: float, end: float) -> list[int]:
    return [
        i
        for i, c in enumerate(calls)
        if start <= c.time < end and (c.source.id, c.destination.id, c.port) == edge
    ]


def inject(
    calls: Sequence[Call],
    edge: EdgeKey,
    kind: AttackKind,
    low_and_slow: bool,
    start: float,
    end: float,
    seed: int = 7,
) -> list[Call]:
    """The recording with ``kind`` applied to ``edge`` over ``[start, end)``, time-ordered."""
    if kind not in TUNABLE:
        raise ValueError(f"{kind.value} is not a tunable attack (novel edges need no model)")
    if not end > start:
        raise ValueError("the attack needs end > start")
    rng = np.random.default_rng(seed)
    out = list(calls)
    hits = _edge_calls(calls, edge, start, end)
    if not hits:
        raise ValueError(f"no calls on {edge} between {start} and {end} to attack")
    if kind is AttackKind.EXFILTRATION:
        factor = 2.5 if low_and_slow else 100.0
        for i in hits:
            out[i] = out[i]._replace(bytes_received=int(out[i].bytes_received * factor))
    elif kind is AttackKind.ERROR_STORM:
        base = sum(1 for i in hits if calls[i].status >= 500) / len(hits)
        share = 2.5 * base + 0.01 if low_and_slow else 0.5
        for i in hits:
            if rng.random() < share:
                out[i] = out[i]._replace(status=503)
    elif kind is AttackKind.VOLUME:
        copies = 2 if low_and_slow else 9
        for i in hits:
            for _ in range(copies):
                late = min(end - 1e-3, calls[i].time + float(rng.uniform(0, 1)))
                out.append(calls[i]._replace(time=late))
    else:  # path enumeration
        template = calls[hits[0]]
        extra = int(len(hits) * (1.5 if low_and_slow else 9.0))
        for t in np.sort(rng.uniform(start, end, extra)):
            probe, status = enumeration_probe(rng)
            out.append(
                template._replace(
                    time=float(t),
                    method="GET",
                    path=probe,
                    status=status,
                    bytes_sent=250,
                    bytes_received=150,
                    duration_ms=3.0,
                )
            )
    out.sort(key=lambda c: c.time)
    return out
