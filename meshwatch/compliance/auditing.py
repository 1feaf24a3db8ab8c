"""Run every registered check over a snapshot, then apply suppressions."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meshwatch.compliance.analysis import Check, Context
from meshwatch.compliance.findings import Finding
from meshwatch.compliance.registry import ALL_CHECKS
from meshwatch.istio.snapshot import Snapshot
from meshwatch.istio.workloads import pod_template

SUPPRESS_ANNOTATION = "meshwatch.io/audit-suppress"
_RULE = re.compile(
    r"^(?P<code>MW\d{4}|\*)=(?P<kind>[A-Za-z*]+)/(?:(?P<ns>[^/]*)/)?(?P<name>[^/]+)$"
)


@dataclass(frozen=True, slots=True)
class Suppression:
    """``--suppress MW0702=Deployment/meshwatch/meshwatch`` (globs allowed in every part)."""

    code: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Suppression:
        match = _RULE.match(text.strip())
        if match is None:
            raise ValueError(
                f"bad --suppress {text!r}: expected CODE=Kind/namespace/name (or CODE=Kind/name)"
            )
        return cls(match["code"], match["kind"], match["ns"] or "", match["name"])

    def covers(self, finding: Finding) -> bool:
        r = finding.resource
        return (
            fnmatch.fnmatchcase(finding.code, self.code)
            and fnmatch.fnmatchcase(r.kind, self.kind)
            and fnmatch.fnmatchcase(r.namespace, self.namespace or "")
            and fnmatch.fnmatchcase(r.name, self.name)
        )


def annotated_codes(finding: Finding) -> set[str]:
    """Codes suppressed by the resource's own ``meshwatch.io/audit-suppress`` annotation
    (comma-separated; a pod template's annotations count for its workload)."""
    values = [finding.resource.annotations.get(SUPPRESS_ANNOTATION, "")]
    template = pod_template(finding.resource)
    if template is not None:
        values.append(template.annotations.get(SUPPRESS_ANNOTATION, ""))
    return {c.strip() for v in values for c in str(v).split(",") if c.strip()}


@dataclass(frozen=True, slots=True)
class AuditResult:
    findings: list[Finding]
    suppressed: list[Finding]


def audit(
    snapshot: Snapshot,
    suppressions: Sequence[Suppression] = (),
    checks: Iterable[Check] = ALL_CHECKS,
) -> AuditResult:
    """Findings sorted by severity, with suppressed ones set aside (not lost)."""
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()
    for check in checks:
        ctx = Context(snapshot, check)
        check.analyze(ctx)
        for finding in ctx.findings:
            key = (finding.code, finding.ref, finding.message)
            if key in seen:
                continue
            seen.add(key)
            if finding.code in annotated_codes(finding) or any(
                s.covers(finding) for s in suppressions
            ):
                suppressed.append(finding)
            else:
                kept.append(finding)
    return AuditResult(sorted(kept, key=Finding.sort_key), sorted(suppressed, key=Finding.sort_key))
