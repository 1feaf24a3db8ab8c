"""meshwatch's own install manifests pass meshwatch's own audit, and every suppression says why."""

from __future__ import annotations

import time
from pathlib import Path

from meshwatch.adapters.files.manifests import load
from meshwatch.compliance.auditing import SUPPRESS_ANNOTATION, audit
from meshwatch.istio.snapshot import Snapshot

ISTIO = Path(__file__).parents[2] / "istio"


def test_install_manifests_have_no_findings_and_justify_their_suppressions() -> None:
    loaded = load([str(ISTIO)])
    assert loaded.errors == []
    result = audit(Snapshot.build(loaded.resources, time.time()))
    assert [(f.code, f.ref) for f in result.findings] == []
    for finding in result.suppressed:
        annotations = finding.resource.annotations
        assert finding.code in annotations[SUPPRESS_ANNOTATION]
        assert annotations.get("meshwatch.io/audit-suppress-reason"), finding.ref
    kinds = {r.kind for r in loaded.resources}
    assert {"Deployment", "Service", "ClusterRole", "Telemetry", "MeshConfig"} <= kinds


def test_read_role_is_read_only_and_secrets_are_not_granted() -> None:
    loaded = load([str(ISTIO / "meshwatch.yaml")])
    (role,) = [r for r in loaded.resources if r.kind == "ClusterRole"]
    for rule in role.body["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert "secrets" not in rule["resources"]
    (deployment,) = [r for r in loaded.resources if r.kind == "Deployment"]
    pod = deployment.body["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
