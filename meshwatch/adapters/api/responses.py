"""One way the API writes JSON.

orjson, not the standard library: the graph and node-graph documents run to megabytes at
10,000 edges (about 7 MB), which orjson encodes about five times faster (9 ms against 50).
Non-string keys become strings, as ``json.dumps`` writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def json_response(
    document: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``document`` as an ``application/json`` response."""
    return web.Response(
        body=orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        headers=headers,
        content_type="application/json",
    )
