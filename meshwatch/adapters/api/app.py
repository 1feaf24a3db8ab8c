"""aiohttp app factory. The server and the tests both build the app with ``make_app``.

Handlers are thin: they ask the read model (``READ_MODEL``) or the service (``CONTROL``) and
serialise; nothing here assembles a document. When ``api_token``
is set, every route except ``/healthz`` and ``/readyz`` (which kubelet probes without
credentials) requires ``Authorization: Bearer <token>``, compared in constant time; the page
at ``/`` and its reads may carry it as a session cookie instead (``views``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from meshwatch.adapters.api.context import CONFIG, CONTROL, READ_MODEL, ApiConfig, Control
from meshwatch.adapters.api.responses import json_response
from meshwatch.adapters.api.views import SESSION_COOKIE, add_view_routes, session_redirect
from meshwatch.errors import ModelError
from meshwatch.monitor.readmodel import AnomalyQuery, ReadModel

UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _same(offered: str, token: str) -> bool:
    # Header bytes that are not UTF-8 reach us as surrogate escapes: compare bytes, never fail.
    return hmac.compare_digest(offered.encode("utf-8", "surrogateescape"), token.encode())


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require the token when one is configured: as ``Authorization: Bearer``, or for reads
    (GET, HEAD) as the page's session cookie; ``/?token=`` sets that cookie."""
    token = request.app[CONFIG].api_token
    if not token or request.path in UNAUTHENTICATED_PATHS:
        return await handler(request)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _same(presented, token):
        return await handler(request)
    if request.method in ("GET", "HEAD"):
        if request.path == "/" and "token" in request.query:
            if _same(request.query["token"], token):
                raise session_redirect(request, token)
        elif _same(request.cookies.get(SESSION_COOKIE, ""), token):
            return await handler(request)
    return json_response(
        {
            "error": "unauthorized",
            "detail": "missing or wrong bearer token (in a browser, open /?token=<token> once)",
        },
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="meshwatch"'},
    )


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process and its event loop answer."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the ALS receiver is listening."""
    ready = request.app[CONTROL].ready()
    return json_response({"status": "ready" if ready else "starting"}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition from meshwatch's own registry."""
    response = web.Response(body=request.app[CONTROL].metrics())
    response.headers["Content-Type"] = request.app[CONFIG].metrics_content_type
    return response


async def graph(request: web.Request) -> web.Response:
    """The live communication graph: ``{"nodes": [...], "edges": [...]}``."""
    return json_response(request.app[READ_MODEL].graph(time.time()))


async def anomalies(request: web.Request) -> web.Response:
    """Anomalies, newest first. Filters: kind, source, target, namespace, since (epoch s), limit."""
    try:
        query = AnomalyQuery.parse(request.query)
    except ValueError as exc:
        return json_response({"error": "bad query", "detail": str(exc)}, status=400)
    return json_response(request.app[READ_MODEL].anomalies(query))


async def baseline(request: web.Request) -> web.Response:
    """Detection mode, learning progress and the model card."""
    return json_response(request.app[READ_MODEL].baseline())


async def promote(request: web.Request) -> web.Response:
    """Learn → observe now (409 with the reason when there is not enough to learn from)."""
    try:
        return json_response(await request.app[CONTROL].promote())
    except ModelError as exc:
        return json_response({"error": "cannot promote", "detail": str(exc)}, status=409)


async def policies(request: web.Request) -> web.Response:
    """Desired DENY policies (mode, state, expiry, anomalies, simulation) and refusals."""
    return json_response(request.app[CONTROL].policies())


async def policy(request: web.Request) -> web.Response:
    """One policy, explained (``?namespace=`` when the name exists in several)."""
    name = request.match_info["name"]
    namespace = request.query.get("namespace")
    doc = request.app[CONTROL].policies()
    found = [
        p
        for p in doc.get("policies", [])
        if p["name"] == name and (namespace is None or p["namespace"] == namespace)
    ]
    refused = [r for r in doc.get("refused", []) if r.get("policy") == name]
    if not found and not refused:
        return json_response(
            {"error": "not found", "detail": f"no policy named {name!r}"}, status=404
        )
    return json_response({"policies": found, "refused": refused})


async def _body(
    request: web.Request, fields: Mapping[str, type | tuple[type, ...]]
) -> dict[str, Any]:
    """A JSON object with only the given fields of the given types (``ValueError`` otherwise)."""
    try:
        doc = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the body must be JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(doc) - set(fields)
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    for name, kind in fields.items():
        if (
            name in doc
            and doc[name] is not None
            and (
                not isinstance(doc[name], kind) or isinstance(doc[name], bool) is not (kind is bool)
            )
        ):
            raise ValueError(f"{name} has the wrong type")
    return doc


async def approve(request: web.Request) -> web.Response:
    """Accept ``source -> target`` (on ``port``, or every port) as normal."""
    try:
        doc = await _body(request, {"source": str, "target": str, "port": int})
        if not doc.get("source") or not doc.get("target"):
            raise ValueError("source and target are required")
        port = doc.get("port")
        if port is not None and not 0 < port < 65536:
            raise ValueError("port must be 1 to 65535")
    except ValueError as exc:
        return json_response({"error": "bad request", "detail": str(exc)}, status=400)
    return json_response(await request.app[CONTROL].approve(doc["source"], doc["target"], port))


async def revoke(request: web.Request) -> web.Response:
    """The emergency brake: ``{"name": NAME}`` or ``{"all": true}``."""
    try:
        doc = await _body(request, {"name": str, "namespace": str, "all": bool})
        if bool(doc.get("all")) == bool(doc.get("name")):
            raise ValueError('give either "name" or "all": true')
    except ValueError as exc:
        return json_response({"error": "bad request", "detail": str(exc)}, status=400)
    result = await request.app[CONTROL].revoke(doc.get("name"), doc.get("namespace"))
    if doc.get("name") and not result.get("revoked"):
        return json_response(
            {"error": "not found", "detail": f"no policy named {doc['name']!r}"}, status=404
        )
    return json_response(result)


def make_app(read_model: ReadModel, control: Control, config: ApiConfig) -> web.Application:
    """Build the aiohttp application."""
    app = web.Application(middlewares=[bearer_auth], client_max_size=64 * 1024)
    app[READ_MODEL] = read_model
    app[CONTROL] = control
    app[CONFIG] = config
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/graph", graph)
    app.router.add_get("/api/v1/anomalies", anomalies)
    app.router.add_get("/api/v1/baseline", baseline)
    app.router.add_post("/api/v1/baseline/promote", promote)
    app.router.add_post("/api/v1/baseline/approve", approve)
    app.router.add_get("/api/v1/policies", policies)
    app.router.add_post("/api/v1/policies/revoke", revoke)
    app.router.add_get("/api/v1/policies/{name}", policy)
    add_view_routes(app)
    return app
