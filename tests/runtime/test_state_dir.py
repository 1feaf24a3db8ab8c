"""Learning in progress survives a restart with ``--state-dir``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from tests.conftest import Running, eventually
from tests.factories import make_call, workload


async def _traffic(mw: Running, seconds: float) -> None:
    web, cart, pay = workload("web"), workload("cart"), workload("payments")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = time.time()
        mw.service.monitor.ingest(
            [make_call(now, web, cart, path=f"/cart/{i}") for i in range(5)]
            + [make_call(now, cart, pay, port=50051, method="POST", path="/charge")]
        )
        await asyncio.sleep(0.05)


async def test_learning_in_progress_is_checkpointed_on_shutdown_and_resumed(
    meshwatch: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    settings = {"window": 0.5, "window_grace": 0.1, "min_requests": 3, "state_dir": state}
    mw: Running = await meshwatch(mode="learn", **settings)
    await _traffic(mw, 3)

    async def windows(running: Running) -> int:
        return int((await running.get_json("/api/v1/baseline"))["learning"]["windows"])

    await eventually(lambda: windows(mw), timeout=5)
    before = (await mw.get_json("/api/v1/baseline"))["learning"]
    await mw.stop()
    checkpoint = json.loads((state / "learning.json").read_text())
    assert checkpoint["mode"] == "learn" and checkpoint["window_seconds"] == 0.5

    again: Running = await meshwatch(mode="learn", **settings)
    after = (await again.get_json("/api/v1/baseline"))["learning"]
    assert after["calls"] == before["calls"] > 0
    assert after["windows"] == before["windows"] > 0
    assert after["edges"] == before["edges"] == 2
    assert after["started"] == before["started"]
