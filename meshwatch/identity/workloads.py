"""Build ``Workload`` identities from what Envoy and Istio report.

Two sources describe a workload:

* the Envoy node of an ALS stream (``sidecar~ip~pod.ns~ns.svc.cluster.local`` plus metadata
  ``NAMESPACE``, ``WORKLOAD_NAME``, ``LABELS``, ``SERVICE_ACCOUNT``, ``CLUSTER_ID``…), sent only
  in a stream's first message;
* Istio's peer metadata filter state, ``downstream_peer`` / ``upstream_peer`` (1.24+, lowercase
  keys ``namespace``, ``workload``, ``app``, ``version``, ``service``, ``cluster``) or the older
  ``wasm.*`` objects (1.22 to 1.23, which may use the node's uppercase keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshwatch.calls import Workload
from meshwatch.identity.spiffe import parse_spiffe, principal_for

APP_LABELS = ("app", "app.kubernetes.io/name", "service.istio.io/canonical-name")
VERSION_LABELS = ("version", "app.kubernetes.io/version", "service.istio.io/canonical-revision")


def identity_id(namespace: str, app: str) -> str:
    """The graph node id of a mesh workload: stable across pods, replicas and versions."""
    return f"{namespace}/{app}"


def _first(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = mapping.get(key)
        if value:
            return str(value)
    return ""


def _labels(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in raw.items()))


def parse_node_id(node_id: str) -> tuple[str, str]:
    """``sidecar~ip~pod.ns~ns.svc.cluster.local`` → ``(pod, namespace)``; empty when unknown."""
    parts = node_id.split("~")
    if len(parts) != 4:
        return ("", "")
    pod, _, namespace = parts[2].partition(".")
    return (pod, namespace)


def workload_from_node(node_id: str, metadata: Mapping[str, Any], trust_domain: str) -> Workload:
    """The reporting sidecar's identity, from its Envoy node id and metadata."""
    pod, ns_from_id = parse_node_id(node_id)
    namespace = str(metadata.get("NAMESPACE") or ns_from_id)
    labels = _labels(metadata.get("LABELS"))
    label_map = dict(labels)
    workload = str(metadata.get("WORKLOAD_NAME") or pod)
    service_account = str(metadata.get("SERVICE_ACCOUNT") or "")
    app = (
        _first(label_map, APP_LABELS)
        or workload
        or (f"sa:{service_account}" if service_account else "")
    )
    principal = (
        principal_for(trust_domain, namespace, service_account)
        if service_account and namespace
        else ""
    )
    return Workload(
        id=identity_id(namespace, app)
        if namespace and app
        else (f"node/{node_id}" if node_id else "unknown"),
        namespace=namespace,
        workload=workload,
        principal=principal,
        app=app,
        version=_first(label_map, VERSION_LABELS),
        cluster_id=str(metadata.get("CLUSTER_ID") or ""),
        labels=labels,
    )


def workload_from_peer(
    peer: Mapping[str, Any], principal: str, trust_domain: str
) -> Workload | None:
    """A peer's identity from Istio's peer-metadata Struct; ``None`` when it names no workload."""
    lower = {str(k).lower(): v for k, v in peer.items()}
    labels = _labels(lower.get("labels"))
    label_map = dict(labels)
    namespace = str(lower.get("namespace") or "")
    workload = str(lower.get("workload") or lower.get("workload_name") or "")
    app = (
        str(lower.get("app") or "")
        or _first(label_map, APP_LABELS)
        or str(lower.get("service") or "")
        or workload
    )
    if not namespace or not app:
        return None
    version = str(lower.get("version") or "") or _first(label_map, VERSION_LABELS)
    service_account = str(lower.get("service_account") or "")
    if not principal and service_account and "/" not in service_account:
        principal = principal_for(trust_domain, namespace, service_account)
    return Workload(
        id=identity_id(namespace, app),
        namespace=namespace,
        workload=workload,
        principal=principal,
        app=app,
        version=version,
        cluster_id=str(lower.get("cluster") or lower.get("cluster_id") or ""),
        labels=labels,
    )


def workload_from_principal(principal: str) -> Workload:
    """Identity from a SPIFFE principal alone (no metadata): keyed ``<ns>/sa:<sa>``."""
    spiffe = parse_spiffe(principal)
    if spiffe is None:
        return Workload(id=f"principal/{principal}", principal=principal)
    app = f"sa:{spiffe.service_account}"
    return Workload(
        id=identity_id(spiffe.namespace, app),
        namespace=spiffe.namespace,
        principal=principal,
        app=app,
    )
