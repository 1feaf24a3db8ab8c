"""The demo's learning and quiet phase, on real Envoys, raises no security anomaly.

Tried as a new user would, the 40-second demo once raised 13 false statistical alerts out of
15. The demo's own settings and traffic run here: after learning, a quiet phase with nothing
but normal traffic must raise no security anomaly (performance ones may be listed)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from meshwatch.detection.engine import Mode
from meshwatch.localmesh.demo import DEMO_DEFAULTS, DEMO_RATE, demo_traffic
from meshwatch.localmesh.launcher import LocalMesh
from meshwatch.localmesh.topology import BOOKINFO
from meshwatch.settings import load_settings
from tests.conftest import Running, eventually

pytestmark = pytest.mark.envoy
QUIET_SECONDS = 20.0


async def test_the_demo_learns_and_stays_quiet_without_an_attack(
    meshwatch: Any, tmp_path: Path
) -> None:
    demo = load_settings(defaults=DEMO_DEFAULTS, env=os.environ)
    mw: Running = await meshwatch(window=demo.window, mode=demo.mode, learn_for=demo.learn_for)
    stop = asyncio.Event()
    async with LocalMesh(BOOKINFO, mw.service.als_port, tmp_path / "mesh") as mesh:
        traffic = asyncio.create_task(demo_traffic(mesh, DEMO_RATE, stop))
        engine = mw.service.monitor.engine
        await eventually(lambda: engine.mode is Mode.OBSERVE, timeout=demo.learn_for + 30)
        await asyncio.sleep(QUIET_SECONDS)
        stop.set()
        await traffic
    security = [a for a in engine.anomalies if a.kind.security]
    assert security == [], [dataclasses.asdict(a)["reason"] for a in security]
    graph = await mw.get_json("/api/v1/graph")
    assert len(graph["edges"]) >= 6
    assert all(e["status"] in ("normal", "warming-up", "degraded") for e in graph["edges"])
