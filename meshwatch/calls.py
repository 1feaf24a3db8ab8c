"""Value types shared by every layer: who called whom, and how.

``Workload`` and ``EdgeKey`` are frozen, slotted dataclasses: they are created once per
identity and cached. ``Call`` is created once per access-log entry on the ingest hot path,
so it is a ``NamedTuple``: just as immutable and typed, and about four times cheaper to
build than a frozen dataclass with twenty fields.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple


class Reporter(enum.StrEnum):
    """Which sidecar logged the call. Server-side entries are authoritative in the mesh."""

    SERVER = "server"
    CLIENT = "client"


class Protocol(enum.StrEnum):
    """Application protocol of the call as seen by Envoy."""

    HTTP = "http"
    TCP = "tcp"


@dataclass(frozen=True, slots=True)
class Workload:
    """A stable actor in the mesh graph.

    ``id`` is what graph nodes are keyed on. For mesh workloads it is
    ``<namespace>/<app>``: the app label (or canonical service, or workload name) survives
    rollouts, scale-ups and new versions, whereas pods and IPs do not. External hosts are
    ``external/<host>``; callers that cannot be identified collapse into ``unknown``.
    """

    id: str
    namespace: str = ""
    workload: str = ""
    principal: str = ""
    app: str = ""
    version: str = ""
    cluster_id: str = ""
    external: bool = False
    provider: str = ""
    labels: tuple[tuple[str, str], ...] = field(default=())

    @property
    def label_dict(self) -> dict[str, str]:
        """Labels as a plain mapping (for the API)."""
        return dict(self.labels)


UNKNOWN = Workload(id="unknown", workload="unknown")


@dataclass(frozen=True, slots=True)
class EdgeKey:
    """A directed edge of the communication graph: source → destination on a port."""

    source: str
    destination: str
    port: int


class Call(NamedTuple):
    """One request (HTTP) or connection (TCP) between two actors, counted once."""

    time: float  # start time, seconds since the epoch
    source: Workload
    destination: Workload
    port: int
    protocol: Protocol
    method: str
    path: str
    status: int  # HTTP status; 0 for TCP
    bytes_sent: int  # source → destination (request bytes)
    bytes_received: int  # destination → source (response bytes)
    duration_ms: float
    response_flags: str
    reporter: Reporter
    authority: str = ""

    @property
    def edge(self) -> EdgeKey:
        """The graph edge this call belongs to."""
        return EdgeKey(self.source.id, self.destination.id, self.port)
