"""``meshwatch audit`` as CI uses it: formats, exit codes, errors, suppression, SARIF validity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.compliance.grid import FIXTURES

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json").read_text())
POSITIVE = FIXTURES / "allow-all-rule" / "positive.yaml"  # one MW0203 error
WARN_ONLY = FIXTURES / "virtual-service-wildcard-host" / "positive.yaml"  # warnings only


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", "audit", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("fmt", ["table", "json", "sarif"])
def test_exit_status_does_not_depend_on_format(fmt: str, tmp_path: Path) -> None:
    clean = tmp_path / "clean.yaml"
    clean.write_text((FIXTURES / "allow-all-rule" / "negative.yaml").read_text())
    assert run("--format", fmt, str(POSITIVE)).returncode == 1
    assert run("--format", fmt, str(WARN_ONLY)).returncode == 0  # default --fail-on error
    assert run("--format", fmt, "--fail-on", "warning", str(WARN_ONLY)).returncode == 1
    assert run("--format", fmt, str(clean)).returncode == 0
    assert run("--format", fmt, "--fail-on", "loud", str(clean)).returncode == 2


def test_json_findings_carry_the_documented_fields() -> None:
    proc = run("--format", "json", str(POSITIVE))
    (finding,) = json.loads(proc.stdout)["findings"]
    assert finding["code"] == "MW0203"
    assert finding["severity"] == "error"
    assert finding["resource"] == "AuthorizationPolicy shop/oops"
    assert finding["file"] == str(POSITIVE)
    assert finding["line"] == 2  # the document starts after the expect comment
    assert finding["remediation"] and finding["message"]
    assert "SAUZ-SR-1" in finding["references"]


def test_sarif_is_valid_2_1_0_with_rules_locations_and_fingerprints() -> None:
    proc = run("--format", "sarif", str(FIXTURES))
    assert proc.returncode == 1
    sarif = json.loads(proc.stdout)
    jsonschema.validate(sarif, SCHEMA)
    run_ = sarif["runs"][0]
    rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
    assert rules["MW0402"]["help"]["text"]
    assert float(rules["MW0402"]["properties"]["security-severity"]) >= 7.0
    results = run_["results"]
    assert results
    for result in results:
        assert result["partialFingerprints"]
        assert rules[result["ruleId"]]
    located = [r for r in results if "physicalLocation" in r["locations"][0]]
    assert located
    region = located[0]["locations"][0]["physicalLocation"]
    assert region["artifactLocation"]["uri"].endswith(".yaml")
    assert region["region"]["startLine"] >= 1
    fingerprints = [r["partialFingerprints"]["meshwatchFinding/v1"] for r in results]
    assert len(fingerprints) == len(set(fingerprints))


def test_unparseable_yaml_names_file_and_line_and_the_rest_is_still_audited(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [unclosed\n")
    proc = run("--format", "json", str(broken), str(POSITIVE))
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert any(str(broken) + ":" in e and "line" not in e.split(":", 2)[1] for e in doc["errors"])
    assert any(
        e.startswith(f"{broken}:4:") or e.startswith(f"{broken}:5:") for e in doc["errors"]
    ), doc["errors"]
    assert [f["code"] for f in doc["findings"]] == ["MW0203"]


def test_stdin_is_read_with_dash() -> None:
    proc = run("--format", "json", "-", stdin=POSITIVE.read_text())
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["findings"][0]["resource"] == "AuthorizationPolicy shop/oops"


def test_suppression_by_flag_and_by_annotation(tmp_path: Path) -> None:
    proc = run(
        "--format", "json", "--suppress", "MW0203=AuthorizationPolicy/shop/oo*", str(POSITIVE)
    )
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert doc["findings"] == [] and [f["code"] for f in doc["suppressed"]] == ["MW0203"]
    annotated = tmp_path / "annotated.yaml"
    annotated.write_text(
        POSITIVE.read_text().replace(
            "metadata: {name: oops, namespace: shop}",
            "metadata: {name: oops, namespace: shop, annotations: {meshwatch.io/audit-suppress: 'MW0203'}}",
        )
    )
    table = run(str(annotated))
    assert table.returncode == 0
    # the table lists what it suppressed, apart, not only a count (issue 11)
    listed = table.stdout.split("suppressed (not counted", 1)[1]
    assert "MW0203 AuthorizationPolicy shop/oops" in listed
    assert table.stdout.strip().endswith("0 finding(s): 0 error, 0 warning, 0 info; 1 suppressed")
    assert run("--suppress", "nonsense", str(POSITIVE)).returncode == 2


def test_list_checks_json_keeps_equivalents_apart_from_related_codes() -> None:
    proc = run("--list-checks", "--format", "json")
    assert proc.returncode == 0
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert len(checks) >= 30
    uid = checks["application-uid-1337"]
    # Proven by the fixture grid (istioctl's own semantics); its wider cases are related only.
    assert (uid["references"], uid["related"]) == (["IST0144"], [])
    assert checks["application-uid-1337-other-workloads"]["related"] == ["IST0144"]
    # An inventory of EnvoyFilters is none of IST0151-IST0155 (issue 11).
    inventory = checks["envoy-filter-inventory"]
    assert inventory["references"] == inventory["related"] == []
    table = run("--list-checks").stdout.splitlines()
    assert table[0].split() == ["CODE", "SEVERITY", "CHECK", "REFERENCES", "RELATED"]
    assert uid["codes"] == [
        {
            "code": "MW0703",
            "name": "ApplicationUid1337",
            "severity": "error",
            "references": ["IST0144"],
        }
    ]
    patches = {c["code"]: c["references"] for c in checks["envoy-filter-patch-operations"]["codes"]}
    assert patches == {
        "MW0904": ["IST0151"],
        "MW0905": ["IST0152"],
        "MW0906": ["IST0153"],
        "MW0907": ["IST0154"],
        "MW0908": ["IST0155"],
    }
    assert "Workload" in uid["inputs"]


def test_table_is_the_default_and_reads_like_a_report() -> None:
    proc = run(str(POSITIVE))
    assert proc.stdout.splitlines()[0].startswith("ERROR   MW0203 AuthorizationPolicy shop/oops")
    assert "fix:" in proc.stdout
    assert proc.stdout.strip().endswith("0 suppressed")


def test_sarif_uris_are_relative_to_the_sarif_root_and_implicit_resources_are_located(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / "k8s").mkdir(parents=True)
    # A namespace used by a workload but not declared: the default-deny finding is about it.
    (repo / "k8s" / "app.yaml").write_text(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        "metadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n"
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: web:1}]}\n"
    )
    absolute = str(repo / "k8s" / "app.yaml")  # an absolute path, as CI scripts pass them
    proc = run("--format", "sarif", "--fail-on", "info", "--sarif-root", str(repo), absolute)
    sarif = json.loads(proc.stdout)
    jsonschema.validate(sarif, SCHEMA)
    run_ = sarif["runs"][0]
    assert run_["originalUriBaseIds"]["SRCROOT"]["uri"] == f"file://{repo}/"
    by_code = {r["ruleId"]: r for r in run_["results"]}
    deny = by_code["MW0201"]  # Namespace shop exists only through the Deployment in it
    assert deny["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "Namespace shop"
    artifact = deny["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "k8s/app.yaml", "uriBaseId": "SRCROOT"}
    for result in run_["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not uri.startswith("/"), uri
    # Outside the root: an absolute file URI, never a path that climbs out of SRCROOT.
    other = run("--format", "sarif", "--sarif-root", str(tmp_path / "elsewhere"), absolute)
    located = json.loads(other.stdout)["runs"][0]["results"][0]["locations"][0]
    assert located["physicalLocation"]["artifactLocation"] == {"uri": f"file://{absolute}"}
    rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
    assert rules["MW0703"]["properties"]["references"] == ["IST0144"]
    assert rules["MW0705"]["properties"]["related"] == ["IST0144"]
    assert "Related (not equivalent): IST0144" in rules["MW0705"]["help"]["text"]


def test_certificate_validity_is_judged_at_the_audit_clock() -> None:
    """``--at`` pins the clock: the grid's valid certificates (2026-01-01 to 2027-06-01) are
    fine at the end of 2026 and expired (IST0161) a year later."""
    credentials = FIXTURES / "gateway-credentials" / "negative.yaml"
    before = run("--format", "json", "--at", "2026-12-01T00:00:00Z", str(credentials))
    after = run("--format", "json", "--at", "2027-12-01T00:00:00Z", str(credentials))
    codes_before = {f["code"] for f in json.loads(before.stdout)["findings"]}
    expired = [f for f in json.loads(after.stdout)["findings"] if f["code"] == "MW0510"]
    assert "MW0510" not in codes_before
    assert {f["resource"] for f in expired} == {
        "Gateway shop/tls-pair",
        "Gateway shop/generic-pair",
    }
    assert all("expired on 2027-06-01" in f["message"] for f in expired)
    assert all("IST0161" in f["references"] for f in expired)
    assert run("--at", "yesterday", str(credentials)).returncode == 2
