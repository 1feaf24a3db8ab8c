"""Normal traffic through the test topology's sidecars: sleep browses httpbin and pays stripe."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from meshwatch.localmesh.launcher import LocalMesh
from tests.runtime.test_envoy_mesh import HTTPBIN_HOST


async def normal_traffic(mesh: LocalMesh, keep_going: Callable[[], bool]) -> None:
    """Requests until ``keep_going()`` is false; a failed request is not the test's point."""
    i = 0
    while keep_going():
        i += 1
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await mesh.request("sleep", HTTPBIN_HOST, f"/status/{i % 20}", size=200)
            if i % 3 == 0:
                await mesh.request("sleep", "api.stripe.com", "/v1/charges", "POST", b"{}")
        await asyncio.sleep(0.01)


def for_seconds(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() < deadline
