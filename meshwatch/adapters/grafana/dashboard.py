"""The meshwatch Grafana dashboard, as code, with Grafana's own ``grafana-foundation-sdk``.

``istio/grafana/meshwatch-dashboard.json`` and its ConfigMap are generated from here
(``meshwatch dashboard --out istio/grafana``); a test checks the committed files equal what
this module builds, and another runs every PromQL expression against a real Prometheus.

Datasources follow Istio's own dashboards: a ``datasource`` variable for Prometheus and a
``namespace`` variable from label values (multi-select, "All" as ``.*``). The node graph and
the open-anomalies table read meshwatch's API through the Infinity datasource (the
``meshwatch`` variable), whose URL is meshwatch's HTTP address.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import nodegraph, prometheus, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

UID = "meshwatch-overview"
INFINITY = "yesoreyeram-infinity-datasource"
PROMETHEUS = "prometheus"
RATE = "$__rate_interval"
NAMESPACES = "${namespace:pipe}"
"""The namespace selection as meshwatch's API takes it (``a|b``; ``.*`` for all)."""

_PROM = model.DataSourceRef(type_val=PROMETHEUS, uid="${datasource}")
_API = model.DataSourceRef(type_val=INFINITY, uid="${meshwatch}")


class InfinityQuery(cogvariants.Dataquery):
    """One Infinity query of a URL relative to the datasource's base URL (meshwatch's API).

    The SDK ships no Infinity model; this writes the fields Infinity's query editor saves."""

    def __init__(
        self,
        ref_id: str,
        path: str,
        format_val: str,
        params: dict[str, str],
        root_selector: str = "",
        columns: list[tuple[str, str, str]] | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.path = path
        self.format_val = format_val
        self.params = params
        self.root_selector = root_selector
        self.columns = columns or []

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": _API.to_json(),
            "type": "json",
            "source": "url",
            "parser": "backend",
            "format": self.format_val,
            "url": self.path,
            "url_options": {
                "method": "GET",
                "data": "",
                "params": [{"key": k, "value": v} for k, v in self.params.items()],
            },
            "root_selector": self.root_selector,
            "columns": [
                {"selector": s, "text": text, "type": kind} for s, text, kind in self.columns
            ],
            "filters": [],
        }


class Infinity(cogbuilder.Builder[InfinityQuery]):
    """Builder wrapper so Infinity queries go through the SDK's panels like any other."""

    def __init__(self, query: InfinityQuery) -> None:
        self._query = query

    def build(self) -> InfinityQuery:
        return self._query


def _graph_params() -> dict[str, str]:
    return {"namespace": NAMESPACES, "since": "${__from}", "until": "${__to}"}


def _prom(ref: str, expr: str, legend: str) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .ref_id(ref)
        .datasource(_PROM)
        .expr(expr)
        .legend_format(legend)
        .range()
    )


def _series(
    panel_id: int, title: str, unit: str, description: str, *queries: prometheus.Dataquery
) -> Any:
    panel = (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(_PROM)
        .unit(unit)
        .height(8)
        .span(12)
        .fill_opacity(10)
    )
    for q in queries:
        panel = panel.with_target(q)
    return panel


def _mesh_graph() -> Any:
    return (
        nodegraph.Panel()
        .id(2)
        .title("Mesh graph")
        .description(
            "Who calls whom, by Istio identity, over meshwatch's live window. Red: anomalous; "
            "dashed: new since the baseline; purple: denied by a meshwatch policy. Click an "
            "edge for its anomaly reasons, mTLS principal, first seen and policy."
        )
        .datasource(_API)
        .height(16)
        .span(24)
        .with_target(
            Infinity(
                InfinityQuery(
                    "nodes", "/api/v1/nodegraph/nodes", "node-graph-nodes", _graph_params()
                )
            )
        )
        .with_target(
            Infinity(
                InfinityQuery(
                    "edges", "/api/v1/nodegraph/edges", "node-graph-edges", _graph_params()
                )
            )
        )
        .nodes(
            nodegraph.NodeOptions()
            .main_stat_unit("reqps")
            .secondary_stat_unit("percent")
            .arcs(
                [
                    nodegraph.ArcOption().field("arc__success").color("green"),
                    nodegraph.ArcOption().field("arc__errors").color("red"),
                ]
            )
        )
        .edges(nodegraph.EdgeOptions().main_stat_unit("reqps").secondary_stat_unit("ms"))
    )


ANOMALY_COLUMNS = [
    ("last_seen_time", "Last seen", "timestamp"),
    ("kind", "Kind", "string"),
    ("source", "Source", "string"),
    ("target", "Target", "string"),
    ("port", "Port", "number"),
    ("reason", "Why", "string"),
    ("score", "Score", "number"),
    ("first_seen_time", "First seen", "timestamp"),
]


def _open_anomalies() -> Any:
    return (
        table.Panel()
        .id(3)
        .title("Open anomalies")
        .description("Anomalies still open, newest first, with the reason each one fired.")
        .datasource(_API)
        .height(8)
        .span(24)
        .with_target(
            Infinity(
                InfinityQuery(
                    "anomalies",
                    "/api/v1/anomalies",
                    "table",
                    {"state": "open", "namespace": NAMESPACES, "limit": "200"},
                    root_selector="anomalies",
                    columns=ANOMALY_COLUMNS,
                )
            )
        )
    )


PROMQL_PANELS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    (
        "Ingest: ALS entries",
        "cps",
        "Entries received per second and entries dropped (queue full, malformed) by reason.",
        [
            (
                f"sum by (kind) (rate(meshwatch_als_entries_received_total[{RATE}]))",
                "{{kind}} received",
            ),
            (
                f"sum by (kind, reason) (rate(meshwatch_als_entries_dropped_total[{RATE}]))",
                "{{kind}} dropped: {{reason}}",
            ),
        ],
    ),
    (
        "Requests by destination namespace",
        "reqps",
        "Calls meshwatch recorded, per destination namespace (labels join istio_requests_total).",
        [
            (
                "sum by (destination_workload_namespace) (rate(meshwatch_edge_requests_total"
                f'{{destination_workload_namespace=~"$namespace"}}[{RATE}]))',
                "{{destination_workload_namespace}}",
            ),
        ],
    ),
    (
        "Anomalies by kind",
        "short",
        "Anomalies raised in each interval, by kind, and those open now.",
        [
            (f"sum by (kind) (increase(meshwatch_anomalies_total[{RATE}]))", "{{kind}} raised"),
            ("sum by (kind) (meshwatch_anomalies_open)", "{{kind}} open"),
        ],
    ),
    (
        "Policies by mode and state",
        "short",
        "meshwatch's DENY policies now (planned, dry-run, enforced) and sink writes.",
        [
            ("sum by (mode, state) (meshwatch_policies)", "{{state}} ({{mode}} mode)"),
            (
                f"sum by (action) (increase(meshwatch_policy_actions_total[{RATE}]))",
                "{{action}}",
            ),
        ],
    ),
]


def build_dashboard() -> model.Dashboard:
    """The dashboard model."""
    builder = (
        dash.Dashboard("meshwatch")
        .uid(UID)
        .description("meshwatch: the mesh graph, anomalies and runtime defence")
        .tags(["meshwatch", "istio", "security"])
        .editable()
        .refresh("10s")
        .time("now-30m", "now")
        .timezone("browser")
        .with_variable(dash.DatasourceVariable("datasource").label("Prometheus").type(PROMETHEUS))
        .with_variable(
            dash.DatasourceVariable("meshwatch").label("meshwatch API (Infinity)").type(INFINITY)
        )
        .with_variable(
            dash.QueryVariable("namespace")
            .label("Namespace")
            .datasource(_PROM)
            .query("label_values(meshwatch_edge_requests_total, destination_workload_namespace)")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_row(dash.Row("Mesh").id(1))
        .with_panel(_mesh_graph())
        .with_panel(_open_anomalies())
        .with_row(dash.Row("Ingest, detection and defence").id(4))
    )
    for panel_id, (title, unit, description, queries) in enumerate(PROMQL_PANELS, start=5):
        targets = [
            _prom(ref, e, legend) for ref, (e, legend) in zip("ABCDEFGH", queries, strict=False)
        ]
        builder = builder.with_panel(_series(panel_id, title, unit, description, *targets))
    return builder.build()


def dashboard_json() -> str:
    """The dashboard as Grafana imports it (stable key order, trailing newline)."""
    return json.dumps(build_dashboard(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def configmap_yaml(dashboard: str) -> str:
    """A ConfigMap holding the dashboard, labelled for Grafana's dashboard sidecar and
    mountable the way Istio's Grafana addon mounts ``istio-grafana-dashboards``."""
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "meshwatch-grafana-dashboards",
            "namespace": "istio-system",
            "labels": {
                "app.kubernetes.io/name": "meshwatch",
                "app.kubernetes.io/component": "dashboards",
                "grafana_dashboard": "1",
            },
        },
        "data": {"meshwatch-dashboard.json": dashboard},
    }
    header = (
        "# Generated by `meshwatch dashboard --out istio/grafana`; do not edit by hand.\n"
        "# Provisions the meshwatch dashboard into Grafana: the kube-prometheus-stack sidecar\n"
        "# picks it up by its grafana_dashboard label; Istio's Grafana addon mounts it like\n"
        "# istio-grafana-dashboards (README: Grafana).\n"
    )
    return header + yaml.dump(doc, Dumper=_BlockDumper, sort_keys=True, width=1000)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the dashboard) as ``|`` blocks, readable in a review."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _str)
