"""A small mesh for defence tests: who is who, a learned baseline and anomalies on it."""

from __future__ import annotations

from meshwatch.calls import EdgeKey, Workload
from meshwatch.detection.anomalies import Anomaly, AnomalyKind, Deviation
from meshwatch.detection.baseline import Baseline
from meshwatch.features.baselines import EdgeBaseline
from tests.factories import workload


def labelled(app: str, namespace: str = "default", sa: str | None = None) -> Workload:
    base = workload(app, namespace)
    return Workload(
        id=base.id,
        namespace=namespace,
        workload=base.workload,
        app=app,
        version="v1",
        principal=f"spiffe://cluster.local/ns/{namespace}/sa/{sa or app}",
        labels=(("app", app), ("pod-template-hash", "5d9f"), ("version", "v1")),
    )


PRODUCTPAGE = labelled("productpage")
REVIEWS = labelled("reviews")
RATINGS = labelled("ratings")
DETAILS = labelled("details")
PROMETHEUS = labelled("prometheus", "monitoring")
ISTIOD = labelled("istiod", "istio-system")
ACTORS = {a.id: a for a in (PRODUCTPAGE, REVIEWS, RATINGS, DETAILS, PROMETHEUS, ISTIOD)}

KNOWN = {
    EdgeKey("default/productpage", "default/reviews", 9080): {"/reviews/{num}", "/health"},
    EdgeKey("default/productpage", "default/details", 9080): {"/details/{num}"},
    EdgeKey("default/reviews", "default/ratings", 9080): {"/ratings/{num}"},
    EdgeKey("monitoring/prometheus", "default/ratings", 15020): {"/stats/prometheus"},
}


def baseline(actors: dict[str, Workload] | None = None) -> Baseline:
    return Baseline(
        known_edges=set(KNOWN),
        edges={
            edge: EdgeBaseline(stats={}, paths=set(paths), windows=20, first_seen=0.0, calls=500)
            for edge, paths in KNOWN.items()
        },
        learned_from=0.0,
        learned_until=1000.0,
        calls=2000,
        actors=dict(ACTORS if actors is None else actors),
    )


_seq = iter(range(1, 1_000_000))


def anomaly(
    source: str,
    target: str,
    port: int = 9080,
    kind: AnomalyKind = AnomalyKind.NEW_EDGE,
    features: tuple[str, ...] = (),
    at: float = 1000.0,
) -> Anomaly:
    deviations = [Deviation(f, 5.0, 0.0, 1.0, 5.0, out_of_range=True) for f in features]
    return Anomaly(
        id=f"{kind.value}-{next(_seq)}",
        kind=kind,
        source=source,
        target=target,
        port=port,
        score=1.0,
        threshold=0.5,
        first_seen=at,
        last_seen=at,
        reason=f"test anomaly on {source} -> {target}",
        deviations=deviations,
    )
