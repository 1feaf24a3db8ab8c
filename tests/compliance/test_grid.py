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
