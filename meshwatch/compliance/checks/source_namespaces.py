"""AuthorizationPolicy sources naming namespaces that do not exist, as istioctl and Kiali see it.

Whether a namespace exists is only known when the input holds the Namespaces (or ``--cluster``
reads them). Both reference tools report every name when they know none, so these checks do
too, and the finding says that the input held no Namespaces.

The two tools differ, so each has its own check:

* istioctl (IST0101, ``analyzeNamespaceNotFound``) reads ``namespaces`` and ``notNamespaces``
  of every ``from.source``; ``*`` matches any existing namespace, ``prefix*`` and ``*suffix``
  match by prefix and suffix, anything else matches case-insensitively;
* Kiali (KIA0101, ``FromNamespaceChecker``) reads ``namespaces`` only, and matches exactly.
"""

from __future__ import annotations

from collections.abc import Callable

from meshwatch.compliance.analysis import Check, CheckInfo, Context, none_in_input
from meshwatch.istio.resources import as_list, as_map

AP = "AuthorizationPolicy"


def report_missing(
    ctx: Context, code: str, fields: tuple[str, ...], exists: Callable[[str, list[str]], bool]
) -> None:
    """Report every namespace named in ``fields`` of a ``from.source`` that ``exists`` does
    not find among the input's Namespaces."""
    known = [r.name for r in ctx.for_each("Namespace")]
    for policy in ctx.for_each(AP):
        for i, rule in enumerate(as_list(policy.spec.get("rules"))):
            for j, source in enumerate(as_list(as_map(rule).get("from"))):
                named = as_map(as_map(source).get("source"))
                for field in fields:
                    for pattern in map(str, as_list(named.get(field))):
                        if not exists(pattern, known):
                            ctx.report(
                                code,
                                policy,
                                namespace=pattern,
                                where=f"rules[{i}].from[{j}].source.{field}",
                                note=none_in_input(known, "Namespaces"),
                                unconfirmed=not known,
                            )


def istioctl_namespace_match(namespace: str, pattern: str) -> bool:
    """istioctl's ``namespaceMatch``."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return namespace.endswith(pattern[1:])
    if pattern.endswith("*"):
        return namespace.startswith(pattern[:-1])
    return namespace.casefold() == pattern.casefold()


class SourceNamespaceNotFound(Check):
    info = CheckInfo(
        name="authz-source-namespace-not-found",
        description="AuthorizationPolicy sources (namespaces, notNamespaces) naming no existing namespace (IST0101's case).",
        inputs=(AP, "Namespace"),
        codes=("MW0213",),
        references=("IST0101",),
    )

    def analyze(self, ctx: Context) -> None:
        report_missing(
            ctx,
            "MW0213",
            ("namespaces", "notNamespaces"),
            lambda pattern, known: any(istioctl_namespace_match(ns, pattern) for ns in known),
        )


class SourceNamespaceNotFoundKiali(Check):
    info = CheckInfo(
        name="authz-source-namespace-not-found-kiali",
        description="AuthorizationPolicy source.namespaces entries that are not a namespace's exact name (KIA0101's case).",
        inputs=(AP, "Namespace"),
        codes=("MW0214",),
        references=("KIA0101",),
    )

    def analyze(self, ctx: Context) -> None:
        report_missing(ctx, "MW0214", ("namespaces",), lambda pattern, known: pattern in known)
