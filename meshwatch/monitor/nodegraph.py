"""Grafana Node Graph frames (and the page's data) from the live graph.

Grafana's Node Graph panel reads two frames whose field names are fixed by Grafana: nodes
(``id``, ``title``, ``subtitle``, ``mainstat``, ``secondarystat``, ``arc__*``, ``color``,
``icon``, ``detail__*``) and edges (``id``, ``source``, ``target``, ``mainstat``,
``secondarystat``, ``thickness``, ``color``, ``highlighted``, ``strokeDasharray``,
``detail__*``). This module builds both as lists of rows, once, for every consumer: the
Infinity datasource, the Node Graph API plugin (which only passes declared fields, hence
``NODE_FIELDS``/``EDGE_FIELDS``) and meshwatch's own page. Pure: the caller gives the time.

Figures are over the live statistics window (``window_seconds``): requests/s is the window's
requests over its length. ``since``/``until`` select the edges active in that span (last seen
at or after ``since``, first seen at or before ``until``); the live graph keeps no older
figures, Prometheus does (``meshwatch_edge_requests_total``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from meshwatch.calls import EdgeKey, Workload
from meshwatch.features.describing import iso
from meshwatch.graph.sketches import QuantileSketch
from meshwatch.monitor.core import Monitor
from meshwatch.monitor.readmodel import EdgePolicyDoc, parse_namespaces

Row = dict[str, str | float | bool | None]
FieldType = Literal["string", "number", "boolean"]

RED = "#e02f44"
ORANGE = "#ff9830"
GREEN = "#56a64b"
GREY = "#8e8e8e"
PURPLE = "#8f3bb8"
BLUE = "#5794f2"
NEW_DASH = "6 4"
"""``strokeDasharray`` of an edge first seen after the baseline was learned."""

_NUMBER = re.compile(r"[0-9]{1,13}(\.[0-9]{1,9})?")
_MS_FROM = 1e11
"""Epoch values at or above this are milliseconds (Grafana's ``${__from}``): in seconds
they would be the year 5138."""


@dataclass(frozen=True, slots=True)
class Field:
    """One declared column (the Node Graph API plugin's ``/api/graph/fields`` entry)."""

    name: str
    type: FieldType
    display_name: str = ""
    color: str = ""

    def doc(self) -> dict[str, str]:
        out = {"field_name": self.name, "type": self.type}
        if self.display_name:
            out["displayName"] = self.display_name
        if self.color:
            out["color"] = self.color
        return out


NODE_FIELDS: tuple[Field, ...] = (
    Field("id", "string"),
    Field("title", "string"),
    Field("subtitle", "string"),
    Field("mainstat", "number", "Requests/s"),
    Field("secondarystat", "number", "Errors %"),
    Field("arc__success", "number", "Success", GREEN),
    Field("arc__errors", "number", "Errors", RED),
    Field("color", "string"),
    Field("icon", "string"),
    Field("detail__namespace", "string", "Namespace"),
    Field("detail__workload", "string", "Workload"),
    Field("detail__principal", "string", "Principal"),
    Field("detail__provider", "string", "Provider"),
    Field("detail__requests_in", "number", "Requests/s in"),
    Field("detail__requests_out", "number", "Requests/s out"),
    Field("detail__anomalies", "number", "Open anomalies"),
)
"""The node columns, in order. ``arc__*_color`` columns (Infinity's way of colouring arcs)
are extra to these: the Node Graph API plugin takes the colour from the declaration."""

EDGE_FIELDS: tuple[Field, ...] = (
    Field("id", "string"),
    Field("source", "string"),
    Field("target", "string"),
    Field("mainstat", "number", "Requests/s"),
    Field("secondarystat", "number", "p99 ms"),
    Field("thickness", "number"),
    Field("color", "string"),
    Field("highlighted", "boolean"),
    Field("strokeDasharray", "string"),
    Field("detail__status", "string", "Status"),
    Field("detail__reasons", "string", "Anomaly reasons"),
    Field("detail__principal", "string", "mTLS principal"),
    Field("detail__protocol", "string", "Protocol"),
    Field("detail__port", "number", "Port"),
    Field("detail__errors_pct", "number", "Errors %"),
    Field("detail__p50_ms", "number", "p50 ms"),
    Field("detail__first_seen", "string", "First seen"),
    Field("detail__last_seen", "string", "Last seen"),
    Field("detail__policy", "string", "Policy"),
    Field("detail__policy_state", "string", "Policy state"),
    Field("detail__denied", "boolean", "Denied"),
)
ARC_COLORS = {f.name: f.color for f in NODE_FIELDS if f.name.startswith("arc__")}


def _epoch(text: str, name: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise ValueError(
            f"{name} must be epoch seconds or milliseconds (Grafana's ${{__from}}), not {text!r}"
        )
    value = float(text)
    return value / 1000.0 if value >= _MS_FROM else value


@dataclass(frozen=True, slots=True)
class NodeGraphQuery:
    """The filters every node-graph route takes (``ValueError`` with a plain message).

    ``namespace`` keeps edges with either end in one of the namespaces (``parse_namespaces``:
    one name, ``a|b`` as Grafana's ``${namespace:pipe}`` writes it, or all). Unknown
    parameters are ignored: Grafana's datasources add their own."""

    namespaces: frozenset[str] = frozenset()
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> NodeGraphQuery:
        names = parse_namespaces(query.get("namespace", ""))
        since = _epoch(query["since"], "since") if query.get("since") else None
        until = _epoch(query["until"], "until") if query.get("until") else None
        if since is not None and until is not None and until < since:
            raise ValueError("until must not be before since")
        return cls(names, since, until)


@dataclass(slots=True)
class _Traffic:
    inbound: int = 0
    inbound_errors: int = 0
    outbound: int = 0
    outbound_errors: int = 0
    anomalies: int = 0
    security: bool = False


@dataclass(frozen=True, slots=True)
class NodeGraphDoc:
    """Both frames, as rows, and the window their figures cover."""

    nodes: list[Row]
    edges: list[Row]
    window_seconds: float


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 3) if seconds > 0 else 0.0


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _thickness(rps: float) -> float:
    return round(1.0 + min(7.0, math.log2(1.0 + rps)), 2)


def _quantile_ms(sketch: QuantileSketch, q: float) -> float | None:
    value = sketch.quantile(q)
    return None if math.isnan(value) else round(value, 3)


class _Stamps:
    """ISO times at whole seconds, each second formatted once per build (edges share them)."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def __call__(self, t: float) -> str:
        second = int(t)
        text = self._cache.get(second)
        if text is None:
            text = self._cache[second] = iso(second).replace(".000Z", "Z")
        return text


def _edge_color(status: str, denied: bool) -> str:
    if denied:
        return PURPLE
    return {"new": RED, "anomalous": RED, "degraded": ORANGE, "warming-up": GREY}.get(status, GREEN)


def _node_row(node: Workload, t: _Traffic, seconds: float) -> Row:
    handled, errors = (
        (t.inbound, t.inbound_errors) if t.inbound else (t.outbound, t.outbound_errors)
    )
    error_share = errors / handled if handled else 0.0
    if node.external:
        title, subtitle = node.workload or node.id.removeprefix("external/"), "external"
        if node.provider:
            subtitle = f"external · {node.provider}"
        color, icon = BLUE, "cloud"
    else:
        title, subtitle = node.app or node.workload or node.id, node.namespace
        color = RED if t.security else ORANGE if t.anomalies else GREEN
        icon = ""
    return {
        "id": node.id,
        "title": title,
        "subtitle": subtitle,
        "mainstat": _rate(handled, seconds),
        "secondarystat": _pct(errors, handled),
        "arc__success": round(1.0 - error_share, 4) if handled else 0.0,
        "arc__success_color": ARC_COLORS["arc__success"],
        "arc__errors": round(error_share, 4) if handled else 0.0,
        "arc__errors_color": ARC_COLORS["arc__errors"],
        "color": color,
        "icon": icon,
        "detail__namespace": node.namespace,
        "detail__workload": node.workload,
        "detail__principal": node.principal,
        "detail__provider": node.provider,
        "detail__requests_in": _rate(t.inbound, seconds),
        "detail__requests_out": _rate(t.outbound, seconds),
        "detail__anomalies": t.anomalies,
    }


def node_graph(
    monitor: Monitor,
    edge_policy: Callable[[EdgeKey], EdgePolicyDoc | None],
    now: float,
    query: NodeGraphQuery,
) -> NodeGraphDoc:
    """Both frames as of ``now``, filtered by ``query``. Rows are sorted by id."""
    graph = monitor.graph
    nodes = graph.nodes
    engine = monitor.engine
    status_of = engine.edge_status
    open_anomalies = engine.open
    seconds = monitor.window.window
    names = query.namespaces
    since, until = query.since, query.until
    stamp = _Stamps()
    traffic: dict[str, _Traffic] = {}
    edge_rows: list[Row] = []
    for key, edge in graph.edges.items():
        if (since is not None and edge.last_seen < since) or (
            until is not None and edge.first_seen > until
        ):
            continue
        source, target = nodes.get(key.source), nodes.get(key.destination)
        if source is None or target is None:
            continue
        if names and source.namespace not in names and target.namespace not in names:
            continue
        requests, errors, latency = edge.window.traffic(now)
        status, _score = status_of(key)
        current = open_anomalies.get(key)
        reason = current[0].reason if current is not None else ""
        policy = edge_policy(key)
        denied = policy is not None and policy["state"] == "enforced"
        for node_id, inbound in ((key.source, False), (key.destination, True)):
            t = traffic.get(node_id)
            if t is None:
                t = traffic[node_id] = _Traffic()
            if inbound:
                t.inbound += requests
                t.inbound_errors += errors
                if current is not None:
                    t.anomalies += 1
                    t.security = t.security or current[0].kind.security
            else:
                t.outbound += requests
                t.outbound_errors += errors
        rps = _rate(requests, seconds)
        edge_rows.append(
            {
                "id": f"{key.source}->{key.destination}:{key.port}",
                "source": key.source,
                "target": key.destination,
                "mainstat": rps,
                "secondarystat": _quantile_ms(latency, 0.99),
                "thickness": _thickness(rps),
                "color": _edge_color(status, denied),
                "highlighted": status in ("new", "anomalous") or denied,
                "strokeDasharray": NEW_DASH if status == "new" else "",
                "detail__status": status,
                "detail__reasons": reason,
                "detail__principal": source.principal,
                "detail__protocol": edge.protocol.value,
                "detail__port": key.port,
                "detail__errors_pct": _pct(errors, requests),
                "detail__p50_ms": _quantile_ms(latency, 0.5),
                "detail__first_seen": stamp(edge.first_seen),
                "detail__last_seen": stamp(edge.last_seen),
                "detail__policy": policy["name"] if policy else "",
                "detail__policy_state": policy["state"] if policy else "",
                "detail__denied": denied,
            }
        )
    node_rows = [_node_row(nodes[n], t, seconds) for n, t in traffic.items()]
    node_rows.sort(key=lambda r: str(r["id"]))
    edge_rows.sort(key=lambda r: str(r["id"]))
    return NodeGraphDoc(node_rows, edge_rows, seconds)


def declared_only(rows: list[Row], fields: tuple[Field, ...]) -> list[Row]:
    """Rows cut to the declared columns (the Node Graph API plugin contract)."""
    names = [f.name for f in fields]
    return [{n: row.get(n) for n in names} for row in rows]
