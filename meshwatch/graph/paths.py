"""Collapse request paths into templates so per-edge path sets stay small.

``/reviews/123`` → ``/reviews/{num}``, ``/orders/0b5e…-…`` → ``/orders/{uuid}``, long hex or
token-like segments → ``{id}``. Query strings are dropped (they may hold secrets and they
explode cardinality). The graph caches results per raw path, in a bounded cache.
"""

from __future__ import annotations

import re

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^(?=.*\d)[0-9a-fA-F]{12,}$")
_TOKEN = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-]{24,}$")
_NUM = re.compile(r"^-?\d+(?:\.\d+)?$")
MAX_PATH_CHARS = 256


def template_segment(segment: str) -> str:
    """Template one path segment."""
    if not segment:
        return segment
    if _NUM.match(segment):
        return "{num}"
    if _UUID.match(segment):
        return "{uuid}"
    if _HEX.match(segment) or _TOKEN.match(segment):
        return "{id}"
    return segment


def template_path(path: str) -> str:
    """Template a whole path (no caching)."""
    path = path.partition("?")[0].partition("#")[0][:MAX_PATH_CHARS]
    return "/".join(template_segment(s) for s in path.split("/"))
