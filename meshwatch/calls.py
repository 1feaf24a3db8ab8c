"""Value types shared by every layer: who called whom, and how.

``Workload`` is a frozen, slotted dataclass: it is created once per identity and cached.
``Call`` is created once per access-log entry on the ingest hot path, so it is a
``NamedTuple``: just as immutable and typed, and about four times cheaper to build than a
frozen dataclass with twenty fields. ``EdgeKey`` is a ``NamedTuple`` too, so the one edge
identity is also a plain hashable tuple: the graph, the baseline, anomalies and the API all
key on it, and a ``(source, destination, port)`` tuple finds the same dict entry.

``WindowSpec`` is the one statistics window of a running meshwatch: every consumer (graph,
features, detection, the window clock, training) takes it instead of its own copy of the
numbers.
"""

from __future__ import annotations

import enum
import math
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


class EdgeKey(NamedTuple):
    """A directed edge of the communication graph: source → destination on a port.

    JSON documents spell it ``source``/``target``/``port``; files spell it ``text``."""

    source: str
    destination: str
    port: int

    @property
    def text(self) -> str:
        """``source|destination|port``: the edge as one string (baseline files, logs)."""
        return f"{self.source}|{self.destination}|{self.port}"

    @classmethod
    def parse(cls, text: str) -> EdgeKey:
        """The inverse of ``text`` (``ValueError`` when it is not one)."""
        source, destination, port = text.rsplit("|", 2)
        return cls(source, destination, int(port))

    def __str__(self) -> str:
        return f"{self.source} -> {self.destination}:{self.port}"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """The statistics window: ``window`` seconds, sliding in ``slices`` equal steps, closed
    ``grace`` seconds after its end.

    Windows are aligned to the epoch (a 60 s window ends on every whole minute), so the live
    clock and a replay of the same calls close exactly the same windows. The grace is the
    lateness allowed to entries: Envoy flushes access logs about once a second, so the calls
    of a window's last second arrive after it ends; judged at its end, every window would miss
    them. Live, the window ending at ``B`` is closed at wall time ``B + grace``; in a replay,
    when the calls' own time passes ``B + grace``.
    """

    window: float = 60.0
    slices: int = 6
    grace: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.grace) and 0 <= self.grace <= 3600):
            raise ValueError(f"the window grace must be 0 to 3600 seconds, not {self.grace}")
        if not (math.isfinite(self.window) and self.window > 0):
            raise ValueError(f"the window must be a positive number of seconds, not {self.window}")
        if self.slices < 1:
            raise ValueError(f"a window needs at least one slice, not {self.slices}")

    @property
    def slice_seconds(self) -> float:
        return self.window / self.slices

    @property
    def grace_slices(self) -> int:
        """Slices the next window can fill while this one waits out its grace."""
        return math.ceil(self.grace / self.slice_seconds)

    def next_boundary(self, t: float) -> float:
        """The end of the window that ``t`` falls in: the first boundary strictly after ``t``."""
        return math.floor(t / self.window) * self.window + self.window


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
