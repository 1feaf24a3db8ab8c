"""Learning in progress survives a restart with ``--state-dir``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from meshwatch.adapters.files.models import save_bundle
from meshwatch.calls import WindowSpec
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.errors import ModelError
from meshwatch.monitor.replaying import Replayer, replay_monitor
from meshwatch.runtime.monitoring import build_monitor
from meshwatch.settings import Settings
from tests.commands import serve_until_it_fails
from tests.conftest import Running, eventually
from tests.factories import make_call, workload
from tests.monitor.test_engine import T0, traffic


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


def test_a_promoted_state_dir_resumes_observing_and_refuses_to_lose_its_model(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    monitor = replay_monitor(
        DetectionParams(window=WindowSpec(60), learn_for=3 * 3600), Mode.OBSERVE
    )
    replayer = Replayer(monitor)
    replayer.feed(traffic(T0, 3 * 3600 + 120))
    assert monitor.engine.bundle is not None
    save_bundle(monitor.engine.bundle, state / "model.skops")
    (state / "state.json").write_text(json.dumps({"mode": "observe", "model": "model.skops"}))

    settings = Settings(state_dir=state, mode="learn")  # restarted without --mode observe
    resumed = build_monitor(settings)
    assert resumed.engine.mode is Mode.OBSERVE

    (state / "model.skops").unlink()
    with pytest.raises(ModelError, match=r"model\.skops is missing"):
        build_monitor(settings)
    proc = serve_until_it_fails("--state-dir", str(state))
    assert proc.returncode == 2
    assert "model.skops is missing" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"  \n\t ", "is empty"), (b"\xff\xfe\x00s3cret", "not UTF-8")],
)
def test_a_token_file_that_holds_no_token_refuses_to_start(
    tmp_path: Path, content: bytes, message: str
) -> None:
    token = tmp_path / "token"
    token.write_bytes(content)
    proc = serve_until_it_fails("--api-token-file", str(token))
    assert proc.returncode == 2
    assert message in proc.stderr and "s3cret" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_flags_are_never_abbreviated() -> None:
    proc = serve_until_it_fails("--api-token", "x")  # once silently taken as --api-token-file
    assert proc.returncode == 2
    assert "unrecognized arguments: --api-token" in proc.stderr
