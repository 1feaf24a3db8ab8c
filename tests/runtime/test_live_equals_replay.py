"""One call stream, two drivers, the same anomalies.

A stream of ALS messages goes to a live meshwatch over real gRPC, in real time: it learns on
1 s windows, promotes itself (fitting in a worker thread), then sees a new caller and an
error storm on a known edge. What it recorded (its own Parquet capture) is then replayed
through the monitor core as ``train``, ``evaluate`` and the notebook do. Both must raise the
same anomalies, with the same scores: a figure measured on a replay is a figure of the code
that serves.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from pathlib import Path
from typing import Any

import grpc

from meshwatch.adapters.files.capture import calls_from_table, read_capture
from meshwatch.detection.anomalies import Anomaly
from meshwatch.monitor.replaying import Replayer, raised
from meshwatch.runtime.monitoring import build_monitor
from tests.als_streams import METHOD, entry, message
from tests.conftest import Running

NORMAL = [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (5, 2)]  # (caller, reporting service)
LEARN_SECONDS = 12.0


async def _send(port: int, seconds: float, attack_after: float) -> None:
    """Ten calls a second on each normal edge; after ``attack_after`` s, a caller never seen
    before and a storm of 503s on one known edge. Entries carry the time they are sent."""
    rng = random.Random(5)
    start = time.time()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        queues: dict[int, asyncio.Queue[bytes | None]] = {r: asyncio.Queue() for r in range(3)}

        async def stream(reporter: int) -> None:
            async def requests() -> Any:
                while (item := await queues[reporter].get()) is not None:
                    yield item

            await channel.stream_unary(METHOD)(requests())

        streams = [asyncio.create_task(stream(r)) for r in range(3)]
        first = {r: True for r in range(3)}
        while (now := time.time()) < start + seconds:
            batches: dict[int, list[Any]] = {r: [] for r in range(3)}
            for caller, reporter in NORMAL:
                batches[reporter].append(entry(rng, caller, now))
            if now >= start + attack_after:
                batches[0].append(entry(rng, 99, now))  # lateral movement: a new caller
                storm = entry(rng, 2, now)
                storm.response.response_code.value = 503
                batches[1].extend([storm] * 3)
            for reporter, entries in batches.items():
                await queues[reporter].put(message(reporter if first[reporter] else None, entries))
                first[reporter] = False
            await asyncio.sleep(0.1)
        for q in queues.values():
            await q.put(None)
        await asyncio.gather(*streams)


def _key(a: Anomaly) -> tuple[Any, ...]:
    return (a.kind, a.edge, round(a.first_seen, 3))


async def test_live_service_and_replay_raise_identical_anomalies(
    meshwatch: Any, tmp_path: Path
) -> None:
    capture = tmp_path / "capture"
    mw: Running = await meshwatch(
        window=1.0,
        window_slices=2,
        window_grace=0.5,
        mode="observe",
        learn_for=LEARN_SECONDS,
        min_requests=3,
        capture_dir=capture,
    )
    settings = mw.service.settings
    await _send(mw.service.als_port, LEARN_SECONDS + 9, attack_after=LEARN_SECONDS + 4)
    await asyncio.sleep(2.0)  # let the last windows close
    await mw.stop()
    live = list(reversed(mw.service.monitor.engine.anomalies))
    last_end = mw.service.monitoring.figures.last_window_end
    assert last_end is not None
    assert mw.service.monitor.engine.bundle is not None, "the live service promoted itself"

    monitor = build_monitor(settings)  # the same settings, a fresh core
    replayer = Replayer(monitor)
    replayed = raised(replayer.feed(calls_from_table(read_capture(capture).table)))
    replayed += raised(replayer.advance_to(last_end))

    assert any(a.kind.value == "new-edge" and "client99" in a.source for a in live)
    assert [_key(a) for a in replayed] == [_key(a) for a in live]
    for mine, theirs in zip(replayed, live, strict=True):
        if math.isfinite(theirs.score):
            assert math.isclose(mine.score, theirs.score, rel_tol=1e-9, abs_tol=1e-12)
        assert mine.reason.split(" scored ")[0] == theirs.reason.split(" scored ")[0]
