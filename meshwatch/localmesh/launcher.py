"""Start and stop a local mesh: apps in this event loop, one real Envoy process per sidecar."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from meshwatch.errors import LocalMeshError
from meshwatch.localmesh.apps import (
    Upstreams,
    external_app,
    http_app,
    start_echo_server,
    tcp_exchange,
)
from meshwatch.localmesh.authz_render import RULE_KEY, Rendered
from meshwatch.localmesh.authz_render import Workload as AuthzWorkload
from meshwatch.localmesh.authz_render import render as render_authz
from meshwatch.localmesh.binary import envoy_binary
from meshwatch.localmesh.certs import CertFiles, MeshCA
from meshwatch.localmesh.envoy_config import (
    LDS_FILE,
    SidecarPorts,
    inbound_listener,
    lds_document,
    sidecar_bootstrap,
)
from meshwatch.localmesh.topology import Topology, WorkloadSpec

READY_TIMEOUT = 20.0


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, 12000)


class _Ports:
    """Loopback ports for the local mesh's listeners, below the kernel's ephemeral range.

    The bind-to-0 trick hands out an ephemeral port, which the kernel may give to any
    outgoing connection (a scrape, a browser, a client) before Envoy binds it: "Address already
    in use". Ports are taken in turn from a random start under that range instead, each
    checked free, so one process never hands the same port out twice."""

    def __init__(self) -> None:
        self.low, self.high = 10000, _ephemeral_low() - 1
        self.next = random.Random().randint(self.low, self.high)  # noqa: S311 (not a secret)

    def take(self) -> int:
        for _ in range(self.high - self.low + 1):
            port = self.next
            self.next = self.low if port >= self.high else port + 1
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
        raise LocalMeshError("no free loopback port below the ephemeral range")


_PORTS = _Ports()  # one sequence per process: the point is never to hand a port out twice


def free_port() -> int:
    """An unused loopback TCP port outside the ephemeral range (see ``_Ports``)."""
    return _PORTS.take()


def _pod_ips(count: int) -> list[str]:
    """Loopback addresses, one per sidecar ("pod IPs"), in a /24 of 127/8 picked at random and
    checked free on the workload ports, so two local meshes on one machine do not collide."""
    rng = random.Random()  # noqa: S311 (address choice, not secrets)
    for _ in range(50):
        base = f"127.{rng.randint(1, 254)}.{rng.randint(0, 254)}"
        ips = [f"{base}.{i + 2}" for i in range(count)]
        try:
            for ip in ips:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind((ip, 0))
        except OSError:
            continue
        return ips
    raise LocalMeshError("no free loopback /24 for the local mesh's pod addresses")


@dataclass
class Sidecar:
    """One running Envoy."""

    spec: WorkloadSpec
    ports: SidecarPorts
    config_path: Path
    log_path: Path
    process: asyncio.subprocess.Process | None = None


@dataclass
class LocalMesh:
    """A running local mesh. Use ``async with LocalMesh(...)``."""

    topology: Topology
    als_port: int
    workdir: Path
    flush_seconds: float = 1.0
    authz: bool = False
    """Serve inbound listeners by file-based LDS, so AuthorizationPolicies can be rendered
    into them as Envoy RBAC (``apply_authz``)."""
    sidecars: dict[str, Sidecar] = field(default_factory=dict)
    external_port: int = 0
    _runners: list[web.AppRunner] = field(default_factory=list)
    _servers: list[asyncio.Server] = field(default_factory=list)
    _session: ClientSession | None = None
    _certs: dict[str, CertFiles] = field(default_factory=dict)
    _rendered: dict[str, str] = field(default_factory=dict)

    async def __aenter__(self) -> LocalMesh:
        try:
            await self.start()
        except BaseException:
            await self.stop()  # a sidecar that failed to start must not leave the others running
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Generate certificates and configs, start apps and sidecars, wait until ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca = MeshCA(self.workdir / "certs")
        services = self.topology.services()
        tcp_hosts = [h for h, ws in services.items() if ws[0].protocol == "tcp"]
        pod_ips = _pod_ips(len(self.topology.workloads)) if self.authz else None
        ports = {
            w.name: SidecarPorts(
                admin=free_port(),
                inbound=w.port if pod_ips else free_port(),
                app=free_port(),
                outbound_http=free_port(),
                outbound_tcp={h: free_port() for h in tcp_hosts},
                **({"inbound_ip": pod_ips[i]} if pod_ips else {}),
            )
            for i, w in enumerate(self.topology.workloads)
        }
        certs = {w.name: ca.issue(w.namespace, w.sa) for w in self.topology.workloads}
        self._certs = certs
        self.external_port = free_port()
        await self._serve(external_app(), self.external_port)
        binary = envoy_binary()
        short = {h: h.split(".")[0] for h in tcp_hosts}
        for spec in self.topology.workloads:
            mine = ports[spec.name]
            if spec.serves and spec.protocol == "tcp":
                self._servers.append(await start_echo_server(mine.app))
            elif spec.serves:
                upstreams = Upstreams(
                    mine.outbound_http, {short[h]: p for h, p in mine.outbound_tcp.items()}
                )
                await self._serve(http_app(spec, upstreams), mine.app)
            lds_dir = self._lds_dir(spec) if self.authz and spec.serves else None
            if lds_dir is not None:
                lds_dir.mkdir(parents=True, exist_ok=True)
                self._write_lds(spec, mine, Rendered(), "0")
            config = sidecar_bootstrap(
                spec,
                self.topology,
                ports,
                certs,
                self.external_port,
                self.als_port,
                self.flush_seconds,
                lds_dir=lds_dir,
            )
            config_path = self.workdir / f"envoy-{spec.name}.json"
            config_path.write_text(json.dumps(config, indent=1))
            sidecar = Sidecar(spec, mine, config_path, self.workdir / f"envoy-{spec.name}.log")
            self.sidecars[spec.name] = sidecar
            sidecar.process = await asyncio.create_subprocess_exec(
                str(binary),
                "-c",
                str(config_path),
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "-l",
                "warning",
                "--log-path",
                str(sidecar.log_path),
                "--drain-time-s",
                "1",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                # Ctrl-C reaches meshwatch only, which then stops its sidecars in order
                # (``stop``): sidecars that died of the terminal's SIGINT on their own were
                # reaped behind asyncio's back ("Unknown child process").
                start_new_session=True,
            )
        self._session = ClientSession(timeout=ClientTimeout(total=10))
        await self._wait_ready()

    def _lds_dir(self, spec: WorkloadSpec) -> Path:
        return self.workdir / "lds" / spec.name

    def _write_lds(
        self, spec: WorkloadSpec, ports: SidecarPorts, rbac: Rendered, version: str
    ) -> bool:
        """Write the inbound listener with ``rbac``; False when nothing changed. The file is
        written beside the watched directory and renamed into it, so Envoy never reads half."""
        listener = inbound_listener(spec, ports, self._certs[spec.name], self.flush_seconds, rbac)
        text = json.dumps(listener, sort_keys=True)
        if self._rendered.get(spec.name) == text:
            return False
        self._rendered[spec.name] = text
        target = self._lds_dir(spec) / LDS_FILE
        tmp = target.parent.parent / f".{spec.name}.{LDS_FILE}"
        tmp.write_text(json.dumps(lds_document(listener, version)))
        os.replace(tmp, target)
        return True

    def authz_target(self, spec: WorkloadSpec) -> AuthzWorkload:
        """The sidecar as the RBAC renderer sees it."""
        return AuthzWorkload(
            namespace=spec.namespace,
            labels={
                "app": spec.app,
                "version": spec.version,
                "service.istio.io/canonical-name": spec.app,
            },
            port_map={spec.port: self.sidecars[spec.name].ports.inbound},  # the same with pod IPs
            http=spec.protocol != "tcp",
        )

    def apply_authz(self, policies: list[dict[str, Any]], version: str) -> dict[str, Rendered]:
        """Render ``policies`` into every serving sidecar's RBAC; the sidecars whose config
        changed, with what they got."""
        changed = {}
        for name, sidecar in self.sidecars.items():
            spec = sidecar.spec
            if not spec.serves:
                continue
            rendered = render_authz(policies, self.authz_target(spec))
            if self._write_lds(spec, sidecar.ports, rendered, version):
                changed[name] = rendered
        return changed

    async def active_rbac(self, workload: str) -> set[str]:
        """The RBAC policy names (enforced and shadow) in the sidecar's active inbound
        listener, read from its admin ``config_dump``. (Its ``version_info`` is no witness:
        Envoy keeps the old one when it updates a listener's filter chains in place.)"""
        assert self._session is not None
        url = f"http://127.0.0.1:{self.sidecars[workload].ports.admin}/config_dump"
        async with self._session.get(url, params={"resource": "dynamic_listeners"}) as resp:
            text = await resp.text()
        return {m.group(0) for m in RULE_KEY.finditer(text)}

    async def wait_listener(self, workload: str, rendered: Rendered, within: float = 10.0) -> float:
        """Wait until the sidecar enforces exactly ``rendered``; when that was."""
        wanted = set(rendered.rules) | set(rendered.shadow)
        deadline = time.monotonic() + within
        while await self.active_rbac(workload) != wanted:
            if time.monotonic() > deadline:
                raise LocalMeshError(f"{workload} did not take the rendered RBAC config")
            await asyncio.sleep(0.02)
        return time.time()

    async def _serve(self, app: web.Application, port: int) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self._runners.append(runner)

    async def _wait_ready(self) -> None:
        assert self._session is not None
        deadline = time.monotonic() + READY_TIMEOUT
        for sidecar in self.sidecars.values():
            while True:
                if sidecar.process is not None and sidecar.process.returncode is not None:
                    raise LocalMeshError(
                        f"Envoy for {sidecar.spec.name} exited: {self._tail(sidecar)}"
                    )
                with contextlib.suppress(OSError, asyncio.TimeoutError):
                    async with self._session.get(
                        f"http://127.0.0.1:{sidecar.ports.admin}/ready"
                    ) as resp:
                        if resp.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise LocalMeshError(
                        f"Envoy for {sidecar.spec.name} not ready: {self._tail(sidecar)}"
                    )
                await asyncio.sleep(0.05)

    @staticmethod
    def _tail(sidecar: Sidecar) -> str:
        try:
            return sidecar.log_path.read_text()[-2000:]
        except OSError:
            return "(no log)"

    async def stop(self) -> None:
        """Stop sidecars (SIGTERM, then SIGKILL), apps and servers."""
        for sidecar in self.sidecars.values():
            process = sidecar.process
            if process is not None and process.returncode is None:
                process.terminate()
        for sidecar in self.sidecars.values():
            process = sidecar.process
            if process is not None:
                try:
                    await asyncio.wait_for(process.wait(), 5)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        if self._session is not None:
            await self._session.close()
        for server in self._servers:
            server.close()
        for runner in self._runners:
            await runner.cleanup()

    async def request(
        self,
        source: str,
        host: str,
        path: str = "/",
        method: str = "GET",
        body: bytes = b"",
        size: int | None = None,
        status: int | None = None,
    ) -> tuple[int, bytes]:
        """Send one HTTP request as workload ``source``'s app would: to its sidecar's outbound."""
        assert self._session is not None
        query: dict[str, str] = {}
        if size is not None:
            query["size"] = str(size)
        if status is not None:
            query["status"] = str(status)
        port = self.sidecars[source].ports.outbound_http
        async with self._session.request(
            method,
            f"http://127.0.0.1:{port}{path}",
            params=query,
            data=body or None,
            headers={"Host": host},
        ) as response:
            return response.status, await response.read()

    async def tcp(self, source: str, service_host: str, payload: bytes) -> bytes:
        """Open a TCP connection from ``source`` to a TCP service, echo ``payload``, close."""
        port = self.sidecars[source].ports.outbound_tcp[service_host]
        return await tcp_exchange(port, payload)

    async def envoy_stats(self, workload: str, prefix: str) -> dict[str, int]:
        """Counters from a sidecar's admin ``/stats`` matching ``prefix``."""
        assert self._session is not None
        url = f"http://127.0.0.1:{self.sidecars[workload].ports.admin}/stats"
        async with self._session.get(url, params={"filter": prefix}) as resp:
            text = await resp.text()
        out: dict[str, int] = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                out[name] = int(value)
        return out
