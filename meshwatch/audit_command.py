"""``meshwatch audit``: gather input (files or cluster), run the checks, render, pick the exit code.

Exit status never depends on the format: 0 clean, 1 findings at or above ``--fail-on``,
2 usage or input errors (unparseable YAML, unreachable cluster). An input error wins over
findings because the audit was incomplete.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshwatch.adapters.files.manifests import load
from meshwatch.compliance.auditing import Suppression, audit
from meshwatch.compliance.findings import Severity
from meshwatch.compliance.registry import ALL_CHECKS
from meshwatch.compliance.reports import checks_doc, render_json, render_sarif, render_table
from meshwatch.errors import MeshwatchError, SettingsError
from meshwatch.istio.resources import Resource
from meshwatch.istio.snapshot import Snapshot

EXIT_CLEAN, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class AuditRequest:
    paths: Sequence[str]
    cluster: bool
    kubeconfig: str | None
    context: str | None
    include_secrets: bool
    root_namespace: str
    output_format: str
    fail_on: str
    suppress: Sequence[str]
    sarif_root: str = "."
    now: float | None = None  # the audit clock (--at); None: the current time


def list_checks(output_format: str) -> str:
    import json

    doc = checks_doc(ALL_CHECKS)
    if output_format == "json":
        return json.dumps(doc, indent=2)
    lines = [f"{'CODE':<8} {'SEVERITY':<8} {'CHECK':<36} {'REFERENCES':<22} RELATED"]
    for check in doc:
        for code in check["codes"]:
            lines.append(
                f"{code['code']:<8} {code['severity']:<8} {check['name']:<36} "
                f"{', '.join(code['references']) or '-':<22} {', '.join(check['related']) or '-'}"
            )
    return "\n".join(lines)


def _gather(request: AuditRequest) -> tuple[list[Resource], list[str]]:
    if request.cluster:
        from meshwatch.adapters.kube.client import audit_input

        read = audit_input(
            request.kubeconfig, request.context, request.root_namespace, request.include_secrets
        )
        return read.resources, read.errors
    loaded = load(request.paths, sys.stdin.buffer if "-" in request.paths else None)
    return loaded.resources, loaded.errors


def run_audit(request: AuditRequest, out: Callable[[str], None]) -> int:
    """Run the audit and write the report with ``out``; returns the exit status."""
    try:
        fail_on = Severity.parse(request.fail_on)
        suppressions = [Suppression.parse(s) for s in request.suppress]
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    if not request.cluster and not request.paths:
        raise SettingsError("audit needs files, directories, '-' (stdin) or --cluster")
    try:
        resources, errors = _gather(request)
    except MeshwatchError as exc:
        resources, errors = [], [str(exc)]
    result = audit(Snapshot.build(resources, request.now or time.time()), suppressions)
    if request.output_format == "json":
        out(render_json(result.findings, result.suppressed, errors))
    elif request.output_format == "sarif":
        root = str(Path(request.sarif_root).resolve())
        out(render_sarif(result.findings, result.suppressed, ALL_CHECKS, root, str(Path.cwd())))
        for error in errors:
            print(f"meshwatch audit: {error}", file=sys.stderr)
    else:
        out(render_table(result.findings, result.suppressed, errors))
    if errors:
        return EXIT_INPUT
    return EXIT_FINDINGS if any(f.severity >= fail_on for f in result.findings) else EXIT_CLEAN
