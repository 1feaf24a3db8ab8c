"""The message catalogue (``messages.yaml``): stable codes, levels, templates, remediations.

Codes are never reused: a retired check keeps its entry with ``retired: true``.
This is the one module of the compliance package that reads a file (package data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from meshwatch.compliance.findings import Severity

_CODE = re.compile(r"^MW\d{4}$")


@dataclass(frozen=True, slots=True)
class Message:
    """One catalogue entry."""

    code: str
    name: str
    level: Severity
    description: str
    template: str
    remediation: str
    security_severity: float
    retired: bool = False

    def render(self, args: dict[str, Any]) -> str:
        return self.template.format(**args)


@cache
def catalogue() -> dict[str, Message]:
    """All messages by code, validated once."""
    text = (
        resources.files("meshwatch.compliance")
        .joinpath("messages.yaml")
        .read_text(encoding="utf-8")
    )
    raw = yaml.safe_load(text)
    out: dict[str, Message] = {}
    for entry in raw["messages"]:
        code = entry["code"]
        if not _CODE.match(code) or code in out:
            raise ValueError(f"messages.yaml: bad or duplicate code {code!r}")
        out[code] = Message(
            code=code,
            name=entry["name"],
            level=Severity.parse(entry["level"]),
            description=entry["description"],
            template=entry["template"],
            remediation=entry["remediation"],
            security_severity=float(entry["security_severity"]),
            retired=bool(entry.get("retired", False)),
        )
    return out
