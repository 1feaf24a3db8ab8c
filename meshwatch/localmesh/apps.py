"""The small services behind the sidecars, and the stand-in for hosts outside the mesh.

An HTTP app answers any path with ``size`` bytes (query parameter, default 256) and status
``status`` (default 200), after calling, through its own sidecar, every host its spec lists
(Bookinfo-style fan-out). A TCP app echoes what it reads.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import ClientSession, ClientTimeout, web

from meshwatch.localmesh.topology import WorkloadSpec

_ECHO_LIMIT = 1 << 20


def _size(request: web.Request, default: int = 256) -> int:
    try:
        return max(0, min(int(request.query.get("size", default)), 10 << 20))
    except ValueError:
        return default


def _status(request: web.Request) -> int:
    try:
        status = int(request.query.get("status", 200))
    except ValueError:
        return 400
    return status if 200 <= status <= 599 else 400


class Upstreams:
    """How an app reaches its dependencies: through its own sidecar's outbound listeners."""

    def __init__(self, outbound_http: int, outbound_tcp: dict[str, int]) -> None:
        self.outbound_http = outbound_http
        self.outbound_tcp = outbound_tcp  # short service name → port
        self.session: ClientSession | None = None

    async def call(self, host: str) -> None:
        if host in self.outbound_tcp:
            await tcp_exchange(self.outbound_tcp[host], b"ping " * 20)
            return
        assert self.session is not None
        async with self.session.get(
            f"http://127.0.0.1:{self.outbound_http}/", headers={"Host": host}
        ) as response:
            await response.read()


def http_app(spec: WorkloadSpec, upstreams: Upstreams) -> web.Application:
    """The aiohttp app of one HTTP workload."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        status = _status(request)
        for host in spec.calls if status < 400 else ():  # an error page calls no backend
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await upstreams.call(host)
        return web.Response(body=b"x" * _size(request), status=status)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        upstreams.session = ClientSession(timeout=ClientTimeout(total=5))
        yield
        await upstreams.session.close()

    app = web.Application(client_max_size=16 << 20)
    app.router.add_route("*", "/{tail:.*}", handle)
    app.cleanup_ctx.append(session_ctx)
    return app


def external_app() -> web.Application:
    """Stands in for every host outside the mesh; answers like ``http_app``."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"e" * _size(request, 512), status=_status(request))

    app = web.Application(client_max_size=16 << 20)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        total = 0
        while total < _ECHO_LIMIT:
            data = await reader.read(65536)
            if not data:
                break
            total += len(data)
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def start_echo_server(port: int) -> asyncio.Server:
    """A TCP echo server on loopback."""
    return await asyncio.start_server(_echo, "127.0.0.1", port)


async def tcp_exchange(port: int, payload: bytes, io_seconds: float = 5.0) -> bytes:
    """Send ``payload`` to a TCP port, read the echo back, close."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), io_seconds)
    try:
        writer.write(payload)
        await writer.drain()
        data = b""
        while len(data) < len(payload):
            chunk = await asyncio.wait_for(reader.read(65536), io_seconds)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
