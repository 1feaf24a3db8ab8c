"""Findings: what an audit reports, one per (check, code, resource, detail)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from meshwatch.istio.resources import Resource


class Severity(enum.IntEnum):
    """Ordered so that ``--fail-on`` compares with ``>=``."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}: use info, warning or error") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, on one resource."""

    code: str
    name: str
    severity: Severity
    resource: Resource
    message: str
    remediation: str
    references: tuple[str, ...]
    related: tuple[str, ...]
    check: str

    @property
    def ref(self) -> str:
        return self.resource.ref

    def sort_key(self) -> tuple[int, str, str, str]:
        return (-self.severity, self.code, self.ref, self.message)
