"""aiohttp app factory. The server and the tests both build the app with ``make_app``.

Handlers are thin: they call the functions in ``ApiDeps`` and serialise. When ``api_token``
is set, every route except ``/healthz`` and ``/readyz`` (which kubelet probes without
credentials) requires ``Authorization: Bearer <token>``, compared in constant time.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz"})


@dataclass(frozen=True, slots=True)
class ApiDeps:
    """What the API reads. Functions, so the API never holds the pipeline's objects."""

    graph: Callable[[], dict[str, Any]]
    metrics: Callable[[], bytes]
    metrics_content_type: str
    ready: Callable[[], bool]
    api_token: str = ""
    anomalies: Callable[[Mapping[str, str]], dict[str, Any]] | None = None
    baseline: Callable[[], dict[str, Any]] | None = None
    promote: Callable[[], Awaitable[dict[str, Any]]] | None = None


DEPS = web.AppKey("deps", ApiDeps)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(document: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(document, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require the bearer token when one is configured."""
    token = request.app[DEPS].api_token
    if not token or request.path in UNAUTHENTICATED_PATHS:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), token.encode()):
        return web.json_response(
            {"error": "unauthorized", "detail": "missing or wrong bearer token"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="meshwatch"'},
        )
    return await handler(request)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process and its event loop answer."""
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the ALS receiver is listening."""
    ready = request.app[DEPS].ready()
    return _json({"status": "ready" if ready else "starting"}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition from meshwatch's own registry."""
    deps = request.app[DEPS]
    response = web.Response(body=deps.metrics())
    response.headers["Content-Type"] = deps.metrics_content_type
    return response


async def graph(request: web.Request) -> web.Response:
    """The live communication graph: ``{"nodes": [...], "edges": [...]}``."""
    return _json(request.app[DEPS].graph())


async def anomalies(request: web.Request) -> web.Response:
    """Anomalies, newest first. Filters: kind, source, target, namespace, since (epoch s), limit."""
    deps = request.app[DEPS]
    if deps.anomalies is None:
        return _json({"error": "detection is not running"}, status=404)
    try:
        return _json(deps.anomalies(request.query))
    except ValueError as exc:
        return _json({"error": "bad query", "detail": str(exc)}, status=400)


async def baseline(request: web.Request) -> web.Response:
    """Detection mode, learning progress and the model card."""
    deps = request.app[DEPS]
    if deps.baseline is None:
        return _json({"error": "detection is not running"}, status=404)
    return _json(deps.baseline())


async def promote(request: web.Request) -> web.Response:
    """Learn → observe now (409 with the reason when there is not enough to learn from)."""
    deps = request.app[DEPS]
    if deps.promote is None:
        return _json({"error": "detection is not running"}, status=404)
    try:
        return _json(await deps.promote())
    except ValueError as exc:
        return _json({"error": "cannot promote", "detail": str(exc)}, status=409)


def make_app(deps: ApiDeps) -> web.Application:
    """Build the aiohttp application."""
    app = web.Application(middlewares=[bearer_auth], client_max_size=64 * 1024)
    app[DEPS] = deps
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/graph", graph)
    app.router.add_get("/api/v1/anomalies", anomalies)
    app.router.add_get("/api/v1/baseline", baseline)
    app.router.add_post("/api/v1/baseline/promote", promote)
    return app
