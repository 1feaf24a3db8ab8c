"""Istio's string matching, and learned path templates turned into Istio path patterns.

``AuthorizationPolicy`` string fields match exactly, by prefix (``abc*``), by suffix
(``*abc``) or anything (``*``); a ``*`` anywhere else is not a wildcard. Path templates from
the graph (``/reviews/{num}``) have no Istio equivalent, so a template becomes the prefix up
to its first variable segment (``/reviews/*``). That pattern admits *more* than the template
did, never less: used in ``notPaths`` it can only leave more of the caller's calls allowed,
which is the safe direction for a deny.
"""

from __future__ import annotations

from collections.abc import Iterable


def istio_match(pattern: str, value: str) -> bool:
    """One Istio string match (exact, ``prefix*``, ``*suffix`` or ``*``)."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def any_match(patterns: Iterable[str], value: str) -> bool:
    """``istio_match`` against each pattern (inlined: the collateral simulation calls this
    for every rule and normal call)."""
    for p in patterns:
        if p in (value, "*"):
            return True
        if p.endswith("*"):
            if value.startswith(p[:-1]):
                return True
        elif p.startswith("*") and value.endswith(p[1:]):
            return True
    return False


def path_pattern(template: str) -> str:
    """The Istio pattern that covers every path ``template`` stands for."""
    cut = len(template)
    for marker in ("{", "*"):
        index = template.find(marker)
        if index != -1:
            cut = min(cut, index)
    if cut == len(template):
        return template
    return template[:cut] + "*"


def learned_path_patterns(templates: Iterable[str]) -> list[str]:
    """The caller's learned paths as a minimal, sorted list of Istio patterns: a pattern
    already covered by a prefix pattern in the list is dropped."""
    patterns = {path_pattern(t) for t in templates if t}
    prefixes = sorted(p[:-1] for p in patterns if p.endswith("*") and p != "*")
    out = []
    for p in sorted(patterns):
        body = p[:-1] if p.endswith("*") else p
        is_prefix = p.endswith("*")
        if not any(body.startswith(q) and (body != q or not is_prefix) for q in prefixes):
            out.append(p)
    return out


def example_path(template: str) -> str:
    """A concrete path a template stands for (to replay learned paths through a policy)."""
    return (
        template.replace("{num}", "0")
        .replace("{uuid}", "00000000-0000-0000-0000-000000000000")
        .replace("{id}", "0a1b2c3d4e5f60718293a4b5")
    )
