"""Every refusal reason the code can give is in REFUSAL_REASONS, which metrics export from
zero (a dashboard's series exist before the first refusal)."""

from __future__ import annotations

import ast
from pathlib import Path

import meshwatch.policy as policy_package
from meshwatch.policy.planning import REFUSAL_REASONS


def _reasons_in_code() -> set[str]:
    found: set[str] = set()
    for path in Path(policy_package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("refuse", "Refusal") and len(node.args) >= 2:
                reason = node.args[1]
                if isinstance(reason, ast.Name) and reason.id == "reason":
                    continue  # Planner.refuse passing its own argument on
                assert isinstance(reason, ast.Constant), f"{path.name}: a reason must be a literal"
                found.add(str(reason.value))
    return found


def test_the_declared_reasons_are_exactly_those_the_code_gives() -> None:
    assert _reasons_in_code() == set(REFUSAL_REASONS)
