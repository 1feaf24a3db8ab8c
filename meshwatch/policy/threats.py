"""What an anomaly threatens, which decides what (if anything) may be denied for it.

Only two threats are deniable by default: a caller on an edge never seen while learning, and
a known caller reaching paths outside its learned set. A statistical shift on a known edge
(volume, bytes, errors) is alert-only unless the operator allows an edge-wide deny, because
blocking a known edge blocks normal calls by definition. Latency alone is performance,
never security. A new external host is deniable only on an egress gateway.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from meshwatch.calls import EdgeKey
from meshwatch.detection.anomalies import Anomaly, AnomalyKind

PATH_FEATURES = frozenset({"unseen_path_share", "distinct_paths"})
EXTERNAL_PREFIX = "external/"


class Threat(enum.StrEnum):
    NOVEL_EDGE = "novel-edge"
    UNSEEN_PATHS = "unseen-paths"
    KNOWN_EDGE = "known-edge"
    EXTERNAL_HOST = "external-host"
    PERFORMANCE = "performance"


def threat_of(anomaly: Anomaly) -> Threat:
    if anomaly.kind is AnomalyKind.PERFORMANCE:
        return Threat.PERFORMANCE
    if anomaly.target.startswith(EXTERNAL_PREFIX):
        return Threat.EXTERNAL_HOST if anomaly.kind is AnomalyKind.NEW_EDGE else Threat.KNOWN_EDGE
    if anomaly.kind is AnomalyKind.NEW_EDGE:
        return Threat.NOVEL_EDGE
    if any(d.feature in PATH_FEATURES and d.z > 0 for d in anomaly.deviations):
        return Threat.UNSEEN_PATHS
    return Threat.KNOWN_EDGE


@dataclass(slots=True)
class Tracked:
    """One deniable concern: an edge and its threat, with the anomalies that raised it.

    Consecutive incidents on the same edge and threat extend one tracked entry, so a deny is
    not torn down and re-created when an incident closes and the attacker comes back."""

    edge: EdgeKey
    threat: Threat
    anomaly_ids: list[str]
    reasons: list[str]
    first_raised: float
    last_active: float
    expires: float
    open: bool = True
    revoked: bool = False
    principal: str = ""
    destination_namespace: str = ""
    destination_selector: tuple[tuple[str, str], ...] = ()
    """Who the two ends were when first planned: a deny must not lapse because a node aged
    out of the graph, or meshwatch restarted, while its anomaly is still within its TTL."""

    @property
    def key(self) -> tuple[EdgeKey, Threat]:
        return (self.edge, self.threat)

    def short_reason(self) -> str:
        text = self.reasons[-1] if self.reasons else self.threat.value
        return text if len(text) <= 160 else text[:157] + "..."
