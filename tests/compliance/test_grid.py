"""Every check against its positive and negative fixtures: exact (code, resource) pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshwatch.compliance.registry import ALL_CHECKS
from tests.compliance.grid import expectations, fixture_cases, reported

CHECKS = {c.info.name: c for c in ALL_CHECKS}


@pytest.mark.parametrize(
    ("check_name", "fixture"), fixture_cases(), ids=lambda v: v if isinstance(v, str) else v.name
)
def test_fixture(check_name: str, fixture: Path) -> None:
    check = CHECKS[check_name]
    assert reported(fixture, check) == expectations(fixture)


def test_all_fixtures_together_report_the_union_without_false_positives() -> None:
    """Checks see each other's fixtures at once (as in a real repo); negatives stay silent.

    Only positive fixtures' expectations may appear for each check's own codes when the whole
    tree is audited file by file; this guards against a check firing on unrelated resources.
    """
    for check_name, fixture in fixture_cases():
        if "negative" in fixture.name:
            assert reported(fixture, CHECKS[check_name]) == set(), fixture


def test_ist0144_is_reported_as_many_times_as_istioctl_reports_it() -> None:
    """istioctl reports the pod-level UID and each container's own UID separately, on the same
    Deployment: two findings here, not one."""
    from meshwatch.compliance.auditing import audit
    from meshwatch.compliance.registry import ALL_CHECKS
    from meshwatch.istio.resources import Resource
    from meshwatch.istio.snapshot import Snapshot

    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "template": {
                "spec": {
                    "securityContext": {"runAsUser": 1337},
                    "containers": [
                        {"name": "web", "securityContext": {"runAsUser": 1337}},
                        {"name": "log"},  # inherits, but istioctl does not count it again
                        {"name": "istio-proxy", "securityContext": {"runAsUser": 1337}},
                    ],
                }
            }
        },
    }
    deployment = Resource("apps/v1", "Deployment", "shop", "web", body)
    (check,) = [c for c in ALL_CHECKS if c.info.name == "application-uid-1337"]
    found = audit(Snapshot.build([deployment], 0.0), checks=[check]).findings
    assert [(f.code, f.ref) for f in found] == [("MW0703", "Deployment shop/web")] * 2
    assert sorted(f.message.split(":")[0] for f in found) == [
        "UID 1337 is set in container web",
        "UID 1337 is set in the pod securityContext",
    ]
