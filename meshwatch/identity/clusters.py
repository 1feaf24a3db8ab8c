"""Envoy upstream cluster names as Istio generates them.

``outbound|9080||reviews.default.svc.cluster.local``, ``outbound|9080|v1|reviews…``,
``inbound|9080||``; ``PassthroughCluster`` (ALLOW_ANY egress to an unknown host) and
``BlackHoleCluster`` (egress blocked by REGISTRY_ONLY) are special.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache

PASSTHROUGH = "PassthroughCluster"
BLACKHOLE = "BlackHoleCluster"
INBOUND_PASSTHROUGH = "InboundPassthroughCluster"


class Direction(enum.StrEnum):
    """Which side of the sidecar the cluster serves."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    PASSTHROUGH = "passthrough"
    BLACKHOLE = "blackhole"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ClusterRef:
    """What an upstream cluster name says about the destination."""

    direction: Direction
    port: int = 0
    subset: str = ""
    host: str = ""


@lru_cache(maxsize=8192)
def parse_cluster(name: str) -> ClusterRef:
    """Parse a cluster name; unknown shapes give ``Direction.UNKNOWN`` (never raises).

    Cached: a mesh has few distinct cluster names and this runs once per log entry.
    """
    if name == PASSTHROUGH:
        return ClusterRef(Direction.PASSTHROUGH)
    if name == BLACKHOLE:
        return ClusterRef(Direction.BLACKHOLE)
    if name == INBOUND_PASSTHROUGH:
        return ClusterRef(Direction.INBOUND)
    parts = name.split("|")
    if len(parts) != 4 or parts[0] not in ("inbound", "outbound"):
        return ClusterRef(Direction.UNKNOWN)
    try:
        port = int(parts[1])
    except ValueError:
        return ClusterRef(Direction.UNKNOWN)
    if not 0 < port < 65536:
        return ClusterRef(Direction.UNKNOWN)
    return ClusterRef(Direction(parts[0]), port, parts[2], parts[3])
