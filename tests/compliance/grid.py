"""Fixture grid helpers: each check has fixtures/<check-name>/*.yaml whose header lines
``# expect: CODE Kind ns/name`` (or ``# expect: none``) say exactly which of that check's
codes must be reported on which resources."""

from __future__ import annotations

import re
from pathlib import Path

from meshwatch.adapters.files.manifests import load
from meshwatch.compliance.analysis import Check
from meshwatch.compliance.auditing import audit
from meshwatch.istio.snapshot import Snapshot

FIXTURES = Path(__file__).parent / "fixtures"
# The audit clock the grid runs at: certificates in the fixtures are dated around it.
AUDIT_CLOCK = 1_796_083_200.0  # 2026-12-01T00:00:00Z
_EXPECT = re.compile(r"^# expect: (?P<body>.+)$", re.MULTILINE)


def expectations(path: Path) -> set[tuple[str, str]]:
    pairs = set()
    for match in _EXPECT.finditer(path.read_text()):
        body = match["body"].strip()
        if body == "none":
            continue
        code, _, resource = body.partition(" ")
        pairs.add((code, resource))
    return pairs


def reported(path: Path, check: Check) -> set[tuple[str, str]]:
    loaded = load([str(path)])
    assert not loaded.errors, loaded.errors
    result = audit(Snapshot.build(loaded.resources, AUDIT_CLOCK), checks=[check])
    return {(f.code, f.ref) for f in result.findings}


def fixture_cases() -> list[tuple[str, Path]]:
    return sorted(
        (d.name, f) for d in FIXTURES.iterdir() if d.is_dir() for f in sorted(d.glob("*.yaml"))
    )
