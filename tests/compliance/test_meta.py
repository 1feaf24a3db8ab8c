"""Meta-tests: the registry, catalogue and fixtures agree, and checks read what they declare."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from meshwatch.adapters.files.manifests import load
from meshwatch.compliance import checks as checks_package
from meshwatch.compliance.analysis import Check, Context
from meshwatch.compliance.catalogue import catalogue
from meshwatch.compliance.registry import ALL_CHECKS
from meshwatch.istio.snapshot import Snapshot
from tests.compliance.grid import FIXTURES


def _all_check_classes() -> set[type[Check]]:
    found = set()
    for module_info in pkgutil.iter_modules(checks_package.__path__):
        module = importlib.import_module(f"{checks_package.__name__}.{module_info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Check) and obj is not Check and obj.__module__ == module.__name__:
                found.add(obj)
    return found


def test_every_check_is_registered_once() -> None:
    registered = [type(c) for c in ALL_CHECKS]
    assert len(registered) == len(set(registered))
    assert set(registered) == _all_check_classes()


def test_every_check_is_named_described_and_has_unique_codes_in_the_catalogue() -> None:
    messages = catalogue()
    names = [c.info.name for c in ALL_CHECKS]
    assert len(names) == len(set(names))
    codes = [code for c in ALL_CHECKS for code in c.info.codes]
    assert len(codes) == len(set(codes)), "a code belongs to exactly one check"
    for check in ALL_CHECKS:
        assert check.info.description.endswith("."), check.info.name
        assert check.info.inputs, check.info.name
        for code in check.info.codes:
            m = messages[code]
            assert m.description and m.remediation and m.template and 0 < m.security_severity <= 10
    live = {code for code, m in messages.items() if not m.retired}
    assert live == set(codes), "every live catalogue code is reported by a check"


def test_every_check_has_positive_and_negative_fixtures() -> None:
    for check in ALL_CHECKS:
        directory = FIXTURES / check.info.name
        files = [f.name for f in directory.glob("*.yaml")]
        assert any(f.startswith("positive") for f in files), check.info.name
        assert any(f.startswith("negative") for f in files), check.info.name


def test_declared_inputs_equal_the_inputs_read() -> None:
    """Run each check over each fixture file and over all of them at once; the union of what
    it read must be exactly what it declares (the context already refuses undeclared kinds)."""
    snapshots = [
        Snapshot.build(load([str(f)]).resources, 0.0) for f in sorted(FIXTURES.rglob("*.yaml"))
    ]
    snapshots.append(Snapshot.build(load([str(FIXTURES)]).resources, 0.0))
    for check in ALL_CHECKS:
        read: set[str] = set()
        for snapshot in snapshots:
            ctx = Context(snapshot, check)
            check.analyze(ctx)
            read |= ctx.read
        assert read == set(check.info.inputs), check.info.name


def test_every_code_is_exercised_by_a_positive_fixture() -> None:
    from tests.compliance.grid import expectations

    expected = {code for f in FIXTURES.rglob("positive*.yaml") for code, _ in expectations(f)}
    assert expected == {code for c in ALL_CHECKS for code in c.info.codes}


def test_every_tool_code_claimed_equivalent_has_positive_and_negative_fixtures() -> None:
    """A check lists an istioctl (IST) or Kiali (KIA) code under ``references`` only when its
    fixture grid proves the same finding on the same resources: both kinds of case exist."""
    import re

    from tests.compliance.grid import FIXTURES, expectations

    for check in ALL_CHECKS:
        mapped = set(check.info.references).union(*check.info.per_code.values())
        claimed = [r for r in mapped if re.fullmatch(r"(IST|KIA)\d{4}", r)]
        if not claimed:
            continue
        cases = sorted((FIXTURES / check.info.name).glob("*.yaml"))
        found = [expectations(p) for p in cases]
        assert any(found), f"{check.info.name}: no positive fixture for {claimed}"
        assert any(not f for f in found), f"{check.info.name}: no negative fixture for {claimed}"


def test_references_and_related_do_not_overlap() -> None:
    for check in ALL_CHECKS:
        mapped = set(check.info.references).union(*check.info.per_code.values())
        assert not mapped & set(check.info.related), check.info.name
        assert set(check.info.per_code) <= set(check.info.codes), check.info.name


def test_at_least_14_istioctl_and_5_kiali_codes_are_claimed_equivalent() -> None:
    """Issue 11's bar: each claim is backed by the grid (the test above)."""
    import re

    claimed = {
        r
        for check in ALL_CHECKS
        for r in set(check.info.references).union(*check.info.per_code.values())
    }
    ist = {r for r in claimed if re.fullmatch(r"IST\d{4}", r)}
    kia = {r for r in claimed if re.fullmatch(r"KIA\d{4}", r)}
    assert len(ist) >= 14, sorted(ist)
    assert len(kia) >= 5, sorted(kia)
