"""Everything an audit looks at, indexed once so checks stay linear in the input.

Indexes: by kind, by (kind, namespace), by (kind, namespace, name), pod templates by namespace,
and the mesh config. A check asking "which pods does this selector match" scans only the pods
of that namespace, never the whole input.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshwatch.istio.resources import MESH_CONFIG, WORKLOAD_KINDS, Resource, as_list
from meshwatch.istio.workloads import PodTemplate, pod_template

DEFAULT_ROOT_NAMESPACE = "istio-system"
DEFAULT_TRUST_DOMAIN = "cluster.local"


@dataclass
class Snapshot:
    """An immutable-by-convention view of the configuration under audit."""

    resources: list[Resource]
    by_kind: dict[str, list[Resource]] = field(default_factory=dict)
    by_namespace: dict[tuple[str, str], list[Resource]] = field(default_factory=dict)
    by_name: dict[tuple[str, str, str], Resource] = field(default_factory=dict)
    pods_by_namespace: dict[str, list[PodTemplate]] = field(default_factory=dict)
    now: float = 0.0
    """The audit's clock (seconds since the epoch): certificate validity is judged at this
    instant. It is passed in, never read here, so an audit is repeatable and tests pin it."""

    @classmethod
    def build(cls, resources: Iterable[Resource], now: float) -> Snapshot:
        items = list(resources)
        by_kind: defaultdict[str, list[Resource]] = defaultdict(list)
        by_ns: defaultdict[tuple[str, str], list[Resource]] = defaultdict(list)
        by_name: dict[tuple[str, str, str], Resource] = {}
        pods: defaultdict[str, list[PodTemplate]] = defaultdict(list)
        for r in items:
            by_kind[r.kind].append(r)
            by_ns[(r.kind, r.namespace)].append(r)
            by_name[(r.kind, r.namespace, r.name)] = r
            if r.kind in WORKLOAD_KINDS and not (r.kind == "Pod" and _owned(r)):
                template = pod_template(r)
                if template is not None:
                    pods[r.namespace].append(template)
        return cls(items, dict(by_kind), dict(by_ns), by_name, dict(pods), now)

    @property
    def mesh_config(self) -> Mapping[str, Any]:
        """The effective MeshConfig (empty when the input has none)."""
        configs = self.by_kind.get(MESH_CONFIG, [])
        return configs[0].body if configs else {}

    @property
    def root_namespace(self) -> str:
        return str(self.mesh_config.get("rootNamespace") or DEFAULT_ROOT_NAMESPACE)

    @property
    def trust_domains(self) -> set[str]:
        mesh = self.mesh_config
        domains = {str(mesh.get("trustDomain") or DEFAULT_TRUST_DOMAIN)}
        domains.update(str(d) for d in as_list(mesh.get("trustDomainAliases")))
        return domains

    def namespaces(self) -> set[str]:
        """Namespaces the input declares (Namespace objects) or uses (objects living in one)."""
        declared = {r.name for r in self.by_kind.get("Namespace", [])}
        used = {r.namespace for r in self.resources if r.namespace}
        return declared | used


def _owned(pod: Resource) -> bool:
    """A pod some controller (Deployment, Job…) owns: its workload is that controller."""
    return bool(pod.metadata.get("ownerReferences"))
