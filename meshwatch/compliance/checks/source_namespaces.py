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

from collections.abc import Iterator

from meshwatch.compliance.analysis import Check, CheckInfo, Context, none_in_input
from meshwatch.istio.resources import Resource, as_list, as_map

AP = "AuthorizationPolicy"


def _sources(policy: Resource) -> Iterator[tuple[int, int, dict[str, list[str]]]]:
    for i, rule in enumerate(as_list(policy.spec.get("rules"))):
        for j, source in enumerate(as_list(as_map(rule).get("from"))):
            fields = as_map(as_map(source).get("source"))
            yield (
                i,
                j,
                {
                    k: [str(v) for v in as_list(fields.get(k))]
                    for k in ("namespaces", "notNamespaces")
                },
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
        known = [r.name for r in ctx.for_each("Namespace")]
        for policy in ctx.for_each(AP):
            for i, j, fields in _sources(policy):
                for field, values in fields.items():
                    for pattern in values:
                        if not any(istioctl_namespace_match(ns, pattern) for ns in known):
                            ctx.report(
                                "MW0213",
                                policy,
                                namespace=pattern,
                                where=f"rules[{i}].from[{j}].source.{field}",
                                note=none_in_input(known, "Namespaces"),
                                unconfirmed=not known,
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
        known = [r.name for r in ctx.for_each("Namespace")]
        for policy in ctx.for_each(AP):
            for i, j, fields in _sources(policy):
                for pattern in fields["namespaces"]:
                    if pattern not in known:
                        ctx.report(
                            "MW0214",
                            policy,
                            namespace=pattern,
                            where=f"rules[{i}].from[{j}].source.namespaces",
                            note=none_in_input(known, "Namespaces"),
                            unconfirmed=not known,
                        )
