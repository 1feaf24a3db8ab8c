"""Render findings as a table (people), JSON (tools) or SARIF 2.1.0 (code scanning)."""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from meshwatch import __version__
from meshwatch.compliance.analysis import Check
from meshwatch.compliance.catalogue import catalogue
from meshwatch.compliance.findings import Finding, Severity

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def finding_doc(finding: Finding) -> dict[str, Any]:
    """One finding as JSON."""
    return {
        "code": finding.code,
        "name": finding.name,
        "severity": finding.severity.label,
        "resource": finding.ref,
        "message": finding.message,
        "remediation": finding.remediation,
        "references": list(finding.references),
        "related": list(finding.related),
        "check": finding.check,
        "file": finding.resource.file or None,
        "line": finding.resource.line or None,
    }


def render_json(
    findings: Sequence[Finding], suppressed: Sequence[Finding], errors: Sequence[str]
) -> str:
    return json.dumps(
        {
            "findings": [finding_doc(f) for f in findings],
            "suppressed": [finding_doc(f) for f in suppressed],
            "errors": list(errors),
            "summary": {s.label: sum(1 for f in findings if f.severity == s) for s in Severity},
        },
        indent=2,
    )


def _where(finding: Finding) -> str:
    r = finding.resource
    return f" ({r.file}:{r.line})" if r.file else ""


def render_table(
    findings: Sequence[Finding], suppressed: Sequence[Finding], errors: Sequence[str]
) -> str:
    lines = []
    for f in findings:
        lines.append(f"{f.severity.label.upper():<7} {f.code} {f.ref}{_where(f)}")
        lines.append(f"        {f.message}")
        lines.append(f"        fix: {f.remediation}")
    for error in errors:
        lines.append(f"ERROR   {error}")
    if suppressed:
        lines.append("suppressed (not counted; --suppress or meshwatch.io/audit-suppress):")
        for f in suppressed:
            lines.append(f"  {f.severity.label:<7} {f.code} {f.ref}{_where(f)}: {f.message}")
    counts = {s: sum(1 for f in findings if f.severity == s) for s in Severity}
    lines.append(
        f"{len(findings)} finding(s): {counts[Severity.ERROR]} error, {counts[Severity.WARNING]} warning, "
        f"{counts[Severity.INFO]} info; {len(suppressed)} suppressed"
    )
    return "\n".join(lines)


def _fingerprint(finding: Finding) -> str:
    return hashlib.sha256(f"{finding.code}|{finding.ref}|{finding.message}".encode()).hexdigest()[
        :32
    ]


def _mapping(references: Sequence[str], related: Sequence[str]) -> str:
    """How a rule maps to other tools: equivalents (same finding, same resources) apart from
    related codes (the same concern, not the same findings)."""
    return (
        f"Equivalent to: {', '.join(references) or 'none'}. "
        f"Related (not equivalent): {', '.join(related) or 'none'}."
    )


SRCROOT = "SRCROOT"


def artifact_location(file: str, root: str, cwd: str) -> dict[str, str]:
    """A SARIF artifactLocation: relative to ``SRCROOT`` (``root``) when the file is under it,
    else an absolute ``file://`` URI. ``root`` and ``cwd`` are absolute; pure path arithmetic."""
    absolute = file if posixpath.isabs(file) else posixpath.normpath(posixpath.join(cwd, file))
    relative = posixpath.relpath(absolute, root)
    if relative == ".." or relative.startswith("../"):
        return {"uri": "file://" + quote(absolute)}
    return {"uri": quote(relative), "uriBaseId": SRCROOT}


def render_sarif(
    findings: Sequence[Finding],
    suppressed: Sequence[Finding],
    checks: Sequence[Check],
    root: str,
    cwd: str,
) -> str:
    """SARIF 2.1.0 for GitHub code scanning: one rule per code, results with locations
    relative to ``root`` (``originalUriBaseIds.SRCROOT``), which the caller resolves."""
    messages = catalogue()
    references = {code: c.info.references_of(code) for c in checks for code in c.info.codes}
    related = {code: c.info.related for c in checks for code in c.info.codes}
    check_names = {code: c.info.name for c in checks for code in c.info.codes}
    codes = sorted(references)
    rules = []
    for code in codes:
        m = messages[code]
        rules.append(
            {
                "id": code,
                "name": m.name,
                "shortDescription": {"text": m.description},
                "fullDescription": {"text": f"{m.description} ({check_names[code]})"},
                "help": {
                    "text": f"{m.remediation}\n{_mapping(references[code], related[code])}",
                    "markdown": f"**Fix:** {m.remediation}\n\n{_mapping(references[code], related[code])}",
                },
                "defaultConfiguration": {"level": _SARIF_LEVEL[m.level]},
                "properties": {
                    "security-severity": f"{m.security_severity:.1f}",
                    "tags": ["security", "istio", *references[code]],
                    "precision": "high",
                    "references": list(references[code]),
                    "related": list(related[code]),
                },
            }
        )
    index = {code: i for i, code in enumerate(codes)}

    def result(finding: Finding, is_suppressed: bool) -> dict[str, Any]:
        r = finding.resource
        location: dict[str, Any] = {
            "logicalLocations": [
                {"name": r.name, "fullyQualifiedName": finding.ref, "kind": "resource"}
            ]
        }
        if r.file:
            location["physicalLocation"] = {
                "artifactLocation": artifact_location(r.file, root, cwd),
                "region": {"startLine": max(1, r.line)},
            }
        doc: dict[str, Any] = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": _SARIF_LEVEL[finding.severity],
            "message": {"text": f"{finding.ref}: {finding.message}"},
            "locations": [location],
            "partialFingerprints": {"meshwatchFinding/v1": _fingerprint(finding)},
        }
        if is_suppressed:
            doc["suppressions"] = [{"kind": "inSource", "justification": "meshwatch suppression"}]
        return doc

    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "meshwatch",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": "file://" + quote(root.rstrip("/") + "/")}},
                "results": [result(f, False) for f in findings]
                + [result(f, True) for f in suppressed],
            }
        ],
    }
    return json.dumps(sarif, indent=2)


def checks_doc(checks: Sequence[Check]) -> list[dict[str, Any]]:
    """``--list-checks --format json``: what each check reports and what it maps to."""
    messages = catalogue()
    return [
        {
            "name": c.info.name,
            "description": c.info.description,
            "codes": [
                {
                    "code": code,
                    "name": messages[code].name,
                    "severity": messages[code].level.label,
                    "references": list(c.info.references_of(code)),
                }
                for code in c.info.codes
            ],
            "severity": max(messages[code].level for code in c.info.codes).label,
            "inputs": list(c.info.inputs),
            "references": list(c.info.references),
            "related": list(c.info.related),
        }
        for c in checks
    ]
