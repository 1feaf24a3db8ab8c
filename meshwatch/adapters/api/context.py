"""What every handler of the API reaches through its ``web.Application``: the read model,
the running service (``Control``) and the API's own configuration, under typed keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from meshwatch.monitor.readmodel import ReadModel


class Control(Protocol):
    """What the API may ask of the running service besides reading."""

    def ready(self) -> bool: ...

    def metrics(self) -> bytes: ...

    async def promote(self) -> Mapping[str, Any]:
        """Learn → observe now; ``ModelError`` with the reason when it cannot."""
        ...

    def policies(self) -> Mapping[str, Any]:
        """The ``/api/v1/policies`` document."""
        ...

    async def approve(self, source: str, target: str, port: int | None) -> Mapping[str, Any]:
        """Accept an edge as normal (lifts its anomaly and deny)."""
        ...

    async def revoke(self, name: str | None, namespace: str | None) -> Mapping[str, Any]:
        """Withdraw one managed policy (``None``: all of them)."""
        ...


@dataclass(frozen=True, slots=True)
class ApiConfig:
    api_token: str = ""
    metrics_content_type: str = "text/plain; version=0.0.4; charset=utf-8"


READ_MODEL = web.AppKey("read_model", ReadModel)
CONTROL = web.AppKey("control", Control)
CONFIG = web.AppKey("config", ApiConfig)
