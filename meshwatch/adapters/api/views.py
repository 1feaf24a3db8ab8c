"""What people look at: Grafana Node Graph frames and meshwatch's own page at ``/``.

- Infinity datasource: ``GET /api/v1/nodegraph/nodes`` and ``/edges`` (one JSON array of rows
  each; Infinity's ``node-graph-nodes``/``node-graph-edges`` formats).
- Node Graph API plugin: ``GET /api/health``, ``/api/graph/fields`` and ``/api/graph/data``;
  the plugin passes its query string through, and only declared fields reach the panel.
- The page: ``GET /`` with its script and style under ``/static/`` (Cytoscape.js vendored,
  no internet needed), reading ``GET /api/v1/nodegraph`` (both frames in one document).

A browser cannot send a bearer header when it opens a page, so ``/?token=<token>`` once sets
an HttpOnly, SameSite=Strict session cookie holding the token and redirects to ``/`` (the way
Jupyter does it). The cookie is accepted for GET and HEAD only: it can read, never change.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

from aiohttp import web

from meshwatch.adapters.api.context import READ_MODEL
from meshwatch.adapters.api.responses import json_response
from meshwatch.monitor.nodegraph import (
    EDGE_FIELDS,
    NODE_FIELDS,
    NodeGraphDoc,
    NodeGraphQuery,
    declared_only,
    node_graph,
)

SESSION_COOKIE = "meshwatch_session"
_STATIC = resources.files("meshwatch.adapters.api") / "static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_CYTOSCAPE_STYLE_HASH = "sha256-pgvDUBa4IjFA2yuSJ2cqcyxmNYJMborsd0ORcRv9vw8="
"""Cytoscape.js adds one ``<style>`` element of its own (``position: relative`` on its
container); the policy allows exactly that text and no other inline style."""
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; "
        f"style-src 'self' '{_CYTOSCAPE_STYLE_HASH}'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC_FILES = {
    "/": "index.html",
    "/static/page.js": "page.js",
    "/static/page.css": "page.css",
    "/static/vendor/cytoscape.min.js": "vendor/cytoscape.min.js",
}


def _frames(request: web.Request) -> NodeGraphDoc | web.Response:
    try:
        query = NodeGraphQuery.parse(request.query)
    except ValueError as exc:
        return json_response({"error": "bad query", "detail": str(exc)}, status=400)
    read_model = request.app[READ_MODEL]
    return node_graph(read_model.monitor, read_model.edge_policy, time.time(), query)


async def nodegraph_nodes(request: web.Request) -> web.Response:
    """Infinity: node rows. Filters: namespace, since, until (epoch s or ms)."""
    doc = _frames(request)
    return doc if isinstance(doc, web.Response) else json_response(doc.nodes)


async def nodegraph_edges(request: web.Request) -> web.Response:
    """Infinity: edge rows. Filters: namespace, since, until (epoch s or ms)."""
    doc = _frames(request)
    return doc if isinstance(doc, web.Response) else json_response(doc.edges)


async def nodegraph(request: web.Request) -> web.Response:
    """The page's data: both frames and the window their figures cover."""
    doc = _frames(request)
    if isinstance(doc, web.Response):
        return doc
    return json_response(
        {"window_seconds": doc.window_seconds, "nodes": doc.nodes, "edges": doc.edges}
    )


async def plugin_health(request: web.Request) -> web.Response:
    """Node Graph API plugin: the datasource's "Save & test"."""
    return json_response({"status": "ok"})


async def plugin_fields(request: web.Request) -> web.Response:
    """Node Graph API plugin: the declared columns, with arc colours."""
    return json_response(
        {
            "nodes_fields": [f.doc() for f in NODE_FIELDS],
            "edges_fields": [f.doc() for f in EDGE_FIELDS],
        }
    )


async def plugin_data(request: web.Request) -> web.Response:
    """Node Graph API plugin: both frames, declared columns only."""
    doc = _frames(request)
    if isinstance(doc, web.Response):
        return doc
    return json_response(
        {
            "nodes": declared_only(doc.nodes, NODE_FIELDS),
            "edges": declared_only(doc.edges, EDGE_FIELDS),
        }
    )


def _static_handler(name: str) -> Any:
    body = (_STATIC / name).read_bytes()
    content_type = _TYPES[name[name.rindex(".") :]]

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(body=body, content_type=content_type, charset="utf-8")
        response.headers.update(PAGE_HEADERS)
        return response

    handler.__doc__ = f"The page's {name}."
    return handler


def session_redirect(request: web.Request, token: str) -> web.HTTPSeeOther:
    """``/?token=`` with the right token: the session cookie, then the page without it."""
    rest = {k: v for k, v in request.query.items() if k != "token"}
    location = str(request.rel_url.with_query(rest)) if rest else "/"
    response = web.HTTPSeeOther(location=location)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    response.headers.update(PAGE_HEADERS)
    return response


def add_view_routes(app: web.Application) -> None:
    """Register the node-graph routes and the page."""
    app.router.add_get("/api/v1/nodegraph", nodegraph)
    app.router.add_get("/api/v1/nodegraph/nodes", nodegraph_nodes)
    app.router.add_get("/api/v1/nodegraph/edges", nodegraph_edges)
    app.router.add_get("/api/health", plugin_health)
    app.router.add_get("/api/graph/fields", plugin_fields)
    app.router.add_get("/api/graph/data", plugin_data)
    for path, name in STATIC_FILES.items():
        app.router.add_get(path, _static_handler(name))
