"""The check contract and the context that is a check's only window on the configuration.

A check is small and stateless: metadata (``CheckInfo``) plus ``analyze(ctx)``. The context
records which input kinds a check reads and refuses kinds it did not declare, so the declared
inputs stay honest (the meta-tests compare declared with read).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from meshwatch.compliance.catalogue import catalogue
from meshwatch.compliance.findings import Finding, Severity
from meshwatch.istio.resources import MESH_CONFIG, WORKLOAD, Resource
from meshwatch.istio.snapshot import Snapshot
from meshwatch.istio.workloads import PodTemplate, selector_matches


@dataclass(frozen=True, slots=True)
class CheckInfo:
    """What a check is, for ``--list-checks`` and for people mapping it to tools they know."""

    name: str
    description: str
    inputs: tuple[str, ...]
    codes: tuple[str, ...]
    references: tuple[str, ...] = ()
    """Equivalents: the same finding on the same resources as that tool or control (a
    fixture grid with positive and negative cases proves each IST/KIA code listed here)."""
    related: tuple[str, ...] = ()
    """Looser mappings: codes of istioctl analyze or Kiali about the same concern, whose
    findings may differ in which resources they name or when they fire."""
    per_code: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Equivalents of single codes, when a check's codes map to different tool codes (one
    analyzer raising IST0151 to IST0155, say); a code listed here has only these."""

    def references_of(self, code: str) -> tuple[str, ...]:
        """What ``code`` is equivalent to."""
        return self.per_code.get(code, self.references)


class Check(abc.ABC):
    """One stateless check."""

    info: ClassVar[CheckInfo]

    @abc.abstractmethod
    def analyze(self, ctx: Context) -> None:
        """Inspect the configuration through ``ctx`` and ``ctx.report`` what is wrong."""


class UndeclaredInput(AssertionError):
    """A check read a kind it did not declare (a bug in the check)."""


class Context:
    """A check's only access to the world: find, exists, for_each, report."""

    def __init__(self, snapshot: Snapshot, check: Check) -> None:
        self._snapshot = snapshot
        self._check = check
        self._declared = frozenset(check.info.inputs)
        self.read: set[str] = set()
        self.findings: list[Finding] = []

    def _reading(self, kind: str) -> None:
        if kind not in self._declared:
            raise UndeclaredInput(f"{self._check.info.name} reads {kind} but does not declare it")
        self.read.add(kind)

    def for_each(self, kind: str, namespace: str | None = None) -> list[Resource]:
        """All resources of a kind (in one namespace when given)."""
        self._reading(kind)
        if namespace is None:
            return self._snapshot.by_kind.get(kind, [])
        return self._snapshot.by_namespace.get((kind, namespace), [])

    def find(self, kind: str, namespace: str, name: str) -> Resource | None:
        """One resource by kind, namespace and name."""
        self._reading(kind)
        return self._snapshot.by_name.get((kind, namespace, name))

    def exists(self, kind: str) -> bool:
        """Whether the input holds any resource of this kind (checks that need it skip otherwise)."""
        self._reading(kind)
        return bool(self._snapshot.by_kind.get(kind))

    def pods(self, namespace: str) -> list[PodTemplate]:
        """Pod templates of every workload object in a namespace."""
        self._reading(WORKLOAD)
        return self._snapshot.pods_by_namespace.get(namespace, [])

    def all_pods(self) -> list[PodTemplate]:
        self._reading(WORKLOAD)
        return [p for pods in self._snapshot.pods_by_namespace.values() for p in pods]

    def selected_pods(
        self, namespace: str, selector: Mapping[str, Any] | None
    ) -> list[PodTemplate]:
        """Pods of a namespace that an Istio ``selector`` (matchLabels) selects."""
        return [p for p in self.pods(namespace) if selector_matches(selector or {}, p.labels)]

    def now(self) -> float:
        """The audit's clock (seconds since the epoch)."""
        return self._snapshot.now

    def mesh(self) -> Mapping[str, Any]:
        """The mesh config (empty when the input has none)."""
        self._reading(MESH_CONFIG)
        return self._snapshot.mesh_config

    def has_mesh_config(self) -> bool:
        self._reading(MESH_CONFIG)
        return bool(self._snapshot.by_kind.get(MESH_CONFIG))

    def root_namespace(self) -> str:
        self._reading(MESH_CONFIG)
        return self._snapshot.root_namespace

    def trust_domains(self) -> set[str]:
        self._reading(MESH_CONFIG)
        return self._snapshot.trust_domains

    def namespaces(self) -> set[str]:
        """Namespaces declared or used by the input."""
        self._reading("Namespace")
        return self._snapshot.namespaces()

    def mesh_scope(self) -> bool:
        """Whether the input describes a mesh, not just one app: it has the mesh config or
        something in the root namespace. Mesh-wide checks only speak up then."""
        self._reading(MESH_CONFIG)
        root = self._snapshot.root_namespace
        return bool(self._snapshot.by_kind.get(MESH_CONFIG)) or any(
            r.namespace == root or (r.kind == "Namespace" and r.name == root)
            for r in self._snapshot.resources
        )

    def report(
        self, code: str, resource: Resource, *, unconfirmed: bool = False, **args: Any
    ) -> None:
        """Report one finding of a code this check declared. ``unconfirmed``: the input lacks
        what would confirm it (no Pods, Namespaces or Secrets at all), so it is reported at
        most as a warning and does not fail a ``--fail-on error`` gate on its own."""
        if code not in self._check.info.codes:
            raise AssertionError(f"{self._check.info.name} reports undeclared code {code}")
        message = catalogue()[code]
        if not resource.file:
            resource = self._located(resource)
        self.findings.append(
            Finding(
                code=code,
                name=message.name,
                severity=min(message.level, Severity.WARNING) if unconfirmed else message.level,
                resource=resource,
                message=message.render(args),
                remediation=message.remediation,
                references=self._check.info.references_of(code),
                related=self._check.info.related,
                check=self._check.info.name,
            )
        )

    def _located(self, resource: Resource) -> Resource:
        """A resource the input does not hold (a namespace it only uses, the mesh) placed at
        the object that brought it in, so code-scanning UIs can show the finding: the mesh
        config for the mesh, else the first object (by file and line) in that namespace."""
        snapshot = self._snapshot
        if resource.kind in ("Mesh", MESH_CONFIG):
            candidates = snapshot.by_kind.get(MESH_CONFIG, []) or [
                r for r in snapshot.resources if r.namespace == snapshot.root_namespace
            ]
        else:
            namespace = resource.name if resource.kind == "Namespace" else resource.namespace
            candidates = [r for r in snapshot.resources if r.namespace == namespace]
        placed = sorted((r for r in candidates if r.file), key=lambda r: (r.file, r.line))
        if not placed:
            return resource
        return dataclasses.replace(resource, file=placed[0].file, line=placed[0].line)


def synthetic(kind: str, namespace: str, name: str) -> Resource:
    """A resource that is missing from the input but is what a finding is about (e.g. the mesh)."""
    return Resource("", kind, namespace, name, {})


def none_in_input(
    resources: Sequence[object], what: str, how: str = "include them, or audit with --cluster"
) -> str:
    """What a finding adds when the input holds no ``what`` to compare with: the reference
    tools report such cases all the same, so the finding says why it may be a false alarm."""
    return "" if resources else f" (the input holds no {what}: {how})"
