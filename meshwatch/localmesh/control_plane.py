"""A small local control plane: what istiod does with AuthorizationPolicies, for the demo.

It lists ``security.istio.io/v1`` AuthorizationPolicies from the Kubernetes API (the in-repo
emulator) every ``interval`` seconds and compares the list's ``resourceVersion`` with the
last one it rendered, as an informer's resync would. When it moved, it renders every policy
into each sidecar's RBAC filters (``authz_render``) and hands the sidecars whose config changed
a new inbound listener by file-based LDS (``LocalMesh.apply_authz``), versioned with that
``resourceVersion``. It then watches each of those sidecars' admin ``config_dump`` until the
listener is active, and reports the moment it is live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

from meshwatch.errors import LocalMeshError
from meshwatch.localmesh.authz_render import Rendered
from meshwatch.localmesh.launcher import LocalMesh

log = logging.getLogger(__name__)
POLICIES = "/apis/security.istio.io/v1/authorizationpolicies"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A rendered config that became active in one sidecar."""

    workload: str
    version: str
    rendered: Rendered
    at: float


@dataclass
class LocalControlPlane:
    mesh: LocalMesh
    server: str
    token: str
    interval: float = 0.1
    on_live: list[Callable[[Delivery], None]] = field(default_factory=list)
    errors: int = 0
    _version: str = ""
    _waiting: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self) -> None:
        async with ClientSession(
            timeout=ClientTimeout(total=5), headers={"Authorization": f"Bearer {self.token}"}
        ) as session:
            while True:
                try:
                    await self.sync(session)
                except (ClientError, TimeoutError, ValueError) as exc:
                    self.errors += 1
                    log.warning("control plane cannot list AuthorizationPolicies: %s", exc)
                await asyncio.sleep(self.interval)

    async def sync(self, session: ClientSession) -> None:
        async with session.get(self.server + POLICIES) as response:
            response.raise_for_status()
            doc: dict[str, Any] = await response.json()
        version = str((doc.get("metadata") or {}).get("resourceVersion", ""))
        if version == self._version:
            return
        self._version = version
        changed = self.mesh.apply_authz(list(doc.get("items") or []), version)
        for workload, rendered in changed.items():
            for skipped in rendered.skipped:
                log.warning("%s: policy not rendered: %s", workload, skipped)
            task = asyncio.create_task(self._await_live(workload, version, rendered))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)

    async def _await_live(self, workload: str, version: str, rendered: Rendered) -> None:
        try:
            at = await self.mesh.wait_listener(workload, rendered)
        except LocalMeshError as exc:
            if self._version == version:  # not superseded by a newer version meanwhile
                log.warning("%s", exc)
            return
        delivery = Delivery(workload, version, rendered, at)
        for hook in self.on_live:
            with contextlib.suppress(Exception):
                hook(delivery)

    async def close(self) -> None:
        """Stop waiting for sidecars (at shutdown)."""
        for task in list(self._waiting):
            task.cancel()
        await asyncio.gather(*self._waiting, return_exceptions=True)
