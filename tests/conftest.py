"""Shared fixtures: a real meshwatch service on loopback and a local mesh of real Envoys."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshwatch.runtime.serving import Service, build_service, run_service
from meshwatch.settings import HostPort, Settings


@dataclasses.dataclass
class Running:
    """A meshwatch service running in the test's event loop."""

    service: Service
    task: asyncio.Task[None]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.service.http_port}"

    async def get_json(self, path: str, token: str = "") -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.http + path, headers=headers) as resp,
        ):
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def stop(self) -> None:
        self.service.stop.set()
        await asyncio.wait_for(self.task, 15)


async def start_meshwatch(**overrides: Any) -> Running:
    """Start meshwatch with loopback ports (0 = any free port unless given)."""
    base = Settings(
        als_listen=HostPort("127.0.0.1", 0),
        http_listen=HostPort("127.0.0.1", 0),
        log_level="WARNING",
        # `.ci/run` runs the real-Envoy tests a second time with the upb fallback forced
        ingest_decoder=os.environ.get("MESHWATCH_INGEST_DECODER", "auto"),
    )
    service = build_service(dataclasses.replace(base, **overrides))
    ready = asyncio.Event()
    task = asyncio.create_task(run_service(service, lambda _: ready.set()))
    done, _ = await asyncio.wait(
        {task, asyncio.create_task(ready.wait())}, timeout=10, return_when=asyncio.FIRST_COMPLETED
    )
    if task in done:
        task.result()  # raises the startup error
    assert ready.is_set(), "meshwatch did not become ready"
    return Running(service, task)


@pytest.fixture
async def meshwatch() -> AsyncIterator[Callable[..., Any]]:
    """Factory fixture; every service it starts is stopped at teardown."""
    started: list[Running] = []

    async def factory(**overrides: Any) -> Running:
        running = await start_meshwatch(**overrides)
        started.append(running)
        return running

    yield factory
    for running in started:
        if not running.task.done():
            await running.stop()


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll an (async or sync) check until it returns a truthy value; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
        await asyncio.sleep(interval)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
