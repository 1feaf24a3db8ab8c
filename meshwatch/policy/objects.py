"""Planned policies as Kubernetes objects, and managed objects read back.

Every object meshwatch writes carries ``app.kubernetes.io/managed-by: meshwatch`` and
annotations that make it self-describing: the anomalies it answers (ids, edge, threat and a
short reason, as JSON), when it was created and when it expires. After a restart meshwatch
re-reads them (``tracked_from``) and adopts what it finds, so it neither duplicates a policy
nor drops one whose anomaly is still within its TTL.

Every object is checked against Istio's own schema (the generated models of
``cloudcoil-models-istio``) before it leaves the process; a field the schema does not know is
an error too, not silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from meshwatch.calls import EdgeKey
from meshwatch.errors import MeshwatchError
from meshwatch.policy.planning import PlannedPolicy
from meshwatch.policy.simulating import DRY_RUN_ANNOTATION
from meshwatch.policy.threats import Threat, Tracked

API_VERSION = "security.istio.io/v1"
KIND = "AuthorizationPolicy"
MANAGED_BY = ("app.kubernetes.io/managed-by", "meshwatch")
ANOMALIES = "meshwatch.io/anomalies"
CREATED = "meshwatch.io/created"
EXPIRES = "meshwatch.io/expires"
FIELD_MANAGER = "meshwatch"


def is_managed(obj: Mapping[str, Any]) -> bool:
    """Whether an object carries meshwatch's label (the only ones it may change)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY[0]) == MANAGED_BY[1])


class PolicyInvalid(MeshwatchError):
    """A generated object does not pass Istio's schema (a meshwatch bug: never pushed)."""


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def render(
    planned: PlannedPolicy,
    tracked: Mapping[tuple[EdgeKey, Threat], Tracked],
    dry_run: bool,
    created: float,
) -> dict[str, Any]:
    items = [tracked[k] for k in planned.keys if k in tracked]
    annotations = {
        ANOMALIES: json.dumps(
            [
                {
                    "ids": t.anomaly_ids[-5:],
                    "edge": t.edge.text,
                    "threat": t.threat.value,
                    "reason": t.short_reason(),
                    "principal": t.principal,
                    "selector": dict(t.destination_selector),
                }
                for t in items
            ],
            separators=(",", ":"),
        ),
        CREATED: iso(created),
        EXPIRES: iso(max((t.expires for t in items), default=created)),
    }
    if dry_run:
        annotations[DRY_RUN_ANNOTATION] = "true"
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": planned.name,
            "namespace": planned.namespace,
            "labels": dict([MANAGED_BY]),
            "annotations": annotations,
        },
        "spec": planned.spec(),
    }


@cache
def _schema() -> Any:
    # Imported on first use: the generated models take about a second to import, which
    # commands that never write a policy should not pay.
    from cloudcoil.models.istio.security.v1 import AuthorizationPolicy

    return AuthorizationPolicy


def load_schema() -> None:
    """Import the schema now (about a second, once) rather than at the first anomaly."""
    _schema()


def validate(obj: Mapping[str, Any]) -> None:
    """``PolicyInvalid`` unless ``obj`` is a valid ``security.istio.io/v1`` AuthorizationPolicy
    whose every field the schema knows."""
    from pydantic import ValidationError

    model = _schema()
    try:
        parsed = model.model_validate(dict(obj))
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise PolicyInvalid(
            f"AuthorizationPolicy fails Istio's schema at {where}: {first['msg']}"
        ) from exc
    round_trip = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    # meshwatch's objects hold only JSON values and never null, so an exact comparison of the
    # round trip finds any field the schema dropped
    if round_trip != dict(obj):
        raise PolicyInvalid("AuthorizationPolicy has fields Istio's schema does not know")


@dataclass(frozen=True, slots=True)
class ObservedPolicy:
    """An AuthorizationPolicy as a sink found it."""

    namespace: str
    name: str
    managed: bool
    annotations: Mapping[str, str] = field(default_factory=dict)
    spec: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObservedPolicy:
        meta = obj.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name") or ""),
            managed=is_managed(obj),
            annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
            spec=dict(obj.get("spec") or {}),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def dry_run(self) -> bool:
        return self.annotations.get(DRY_RUN_ANNOTATION, "").lower() == "true"

    def as_object(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "annotations": dict(self.annotations),
                **({"labels": dict([MANAGED_BY])} if self.managed else {}),
            },
            "spec": dict(self.spec),
        }

    def created(self) -> float | None:
        try:
            return parse_iso(self.annotations[CREATED])
        except (KeyError, ValueError):
            return None

    def expires(self) -> float | None:
        try:
            return parse_iso(self.annotations[EXPIRES])
        except (KeyError, ValueError):
            return None


def tracked_from(observed: ObservedPolicy, ttl: float) -> list[Tracked]:
    """The tracked threats a managed policy was written for (adoption after a restart).
    Unreadable annotations adopt nothing: the policy is then removed as no longer desired."""
    try:
        entries = json.loads(observed.annotations.get(ANOMALIES, "[]"))
        created = observed.created()
        expires = observed.expires()
        if created is None or expires is None or not isinstance(entries, list):
            return []
        out = []
        for entry in entries:
            out.append(
                Tracked(
                    edge=EdgeKey.parse(str(entry["edge"])),
                    threat=Threat(str(entry["threat"])),
                    anomaly_ids=[str(i) for i in entry.get("ids", [])],
                    reasons=[str(entry.get("reason", ""))],
                    first_raised=created,
                    last_active=expires - ttl,
                    expires=expires,
                    open=False,
                    principal=str(entry.get("principal", "")),
                    destination_namespace=observed.namespace,
                    destination_selector=tuple(
                        sorted((str(k), str(v)) for k, v in (entry.get("selector") or {}).items())
                    ),
                )
            )
        return out
    except (ValueError, KeyError, TypeError):
        return []
