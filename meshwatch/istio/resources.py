"""Configuration objects as the checks see them: Kubernetes resources with file and line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Kinds that run pods, and where their pod template lives.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
WORKLOAD = "Workload"  # the pseudo input kind a check declares to read any of WORKLOAD_KINDS
MESH_CONFIG = "MeshConfig"  # pseudo kind: the mesh config from ConfigMap istio or IstioOperator
SYSTEM_NAMESPACES = frozenset(
    {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}
)
CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
)


@dataclass(frozen=True, slots=True)
class Resource:
    """One object, with where it came from (file and 1-based line of its document)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    body: Mapping[str, Any] = field(repr=False)
    file: str = ""
    line: int = 0

    @property
    def ref(self) -> str:
        """``Kind ns/name`` (``Kind name`` when cluster-scoped): how findings name resources."""
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )

    @property
    def group(self) -> str:
        """API group (``security.istio.io``), empty for the core group."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        """API version (``v1beta1``)."""
        return self.api_version.rpartition("/")[2]

    @property
    def spec(self) -> Mapping[str, Any]:
        """The ``spec`` (empty mapping when absent or malformed)."""
        spec = self.body.get("spec")
        return spec if isinstance(spec, Mapping) else {}

    @property
    def metadata(self) -> Mapping[str, Any]:
        meta = self.body.get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    @property
    def labels(self) -> Mapping[str, str]:
        labels = self.metadata.get("labels")
        return labels if isinstance(labels, Mapping) else {}

    @property
    def annotations(self) -> Mapping[str, str]:
        annotations = self.metadata.get("annotations")
        return annotations if isinstance(annotations, Mapping) else {}


def from_object(
    obj: Mapping[str, Any], file: str = "", line: int = 0, default_namespace: str = "default"
) -> Resource | None:
    """A Resource from a decoded Kubernetes object; ``None`` when it is not one (no kind/name)."""
    kind = obj.get("kind")
    meta = obj.get("metadata")
    if (
        not isinstance(kind, str)
        or not isinstance(meta, Mapping)
        or not isinstance(meta.get("name"), str)
    ):
        return None
    namespace = "" if kind in CLUSTER_SCOPED else str(meta.get("namespace") or default_namespace)
    return Resource(str(obj.get("apiVersion", "")), kind, namespace, meta["name"], obj, file, line)


_MAPPING_FIELDS = (
    ("metadata", "labels"),
    ("metadata", "annotations"),
    ("spec", "selector"),
    ("spec", "workloadSelector"),
    ("spec", "selector", "matchLabels"),
    ("spec", "workloadSelector", "labels"),
    ("spec", "template"),
)


def shape_problems(obj: Any) -> list[str]:
    """What makes a document not a well-formed Kubernetes object, in words for ``file:line``
    errors. Checks tolerate malformed fields (they read them as empty), so without this an
    ``spec: 5`` or a ``selector: "x"`` would pass with no word while meaning nothing."""
    if not isinstance(obj, Mapping):
        return [f"a document must be a Kubernetes object (a mapping), not {_type(obj)}"]
    if not isinstance(obj.get("kind"), str) or not obj.get("kind"):
        return ["not a Kubernetes object: no kind"]
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return [f"{obj['kind']} without metadata.name"]
    problems = []
    if "spec" in obj and not isinstance(obj["spec"], Mapping) and obj["spec"] is not None:
        problems.append(f"spec must be a mapping, not {_type(obj['spec'])}")
    for path in _MAPPING_FIELDS:
        value: Any = obj
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is not None and not isinstance(value, Mapping):
            problems.append(f"{'.'.join(path)} must be a mapping, not {_type(value)}")
    return problems


def _type(value: Any) -> str:
    return {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        list: "a list",
    }.get(type(value), type(value).__name__)


def as_list(value: Any) -> list[Any]:
    """A YAML list field, tolerating absence and wrong types (bad input never crashes a check)."""
    return list(value) if isinstance(value, list) else []


def as_map(value: Any) -> Mapping[str, Any]:
    """A YAML mapping field, tolerating absence and wrong types."""
    return value if isinstance(value, Mapping) else {}
