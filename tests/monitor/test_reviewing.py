"""Edge patterns of ``train --exclude-edge`` as people write them."""

from __future__ import annotations

import pytest

from meshwatch.calls import EdgeKey
from meshwatch.monitor.reviewing import EdgePattern

EXFIL = EdgeKey("default/sleep", "external/exfil.example.net", 8443)


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("default/sleep->external/exfil.example.net", True),
        ("default/sleep->external/exfil.example.net:8443", True),
        ("default/sleep->external/exfil.example.net:*", True),  # any port, said explicitly
        ("default/sleep->external/*", True),
        ("default/*->external/exfil.example.net:443", False),
        ("default/sleep->default/*", False),
    ],
)
def test_patterns(text: str, matches: bool) -> None:
    assert EdgePattern.parse(text).matches(EXFIL) is matches


@pytest.mark.parametrize("text", ["default/sleep", "->x", "a->"])
def test_not_an_edge(text: str) -> None:
    with pytest.raises(ValueError, match="SOURCE->DESTINATION"):
        EdgePattern.parse(text)
