"""TLS origination in DestinationRules: is the upstream's certificate actually verified?"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from meshwatch.compliance.analysis import Check, CheckInfo, Context
from meshwatch.istio.resources import Resource, as_list, as_map


def tls_blocks(rule: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, tls settings) of a DestinationRule: top level, per port, per subset."""
    policies: list[tuple[str, Mapping[str, Any]]] = [("", as_map(rule.spec.get("trafficPolicy")))]
    for subset in as_list(rule.spec.get("subsets")):
        subset = as_map(subset)
        policies.append((f" subset {subset.get('name', '?')}", as_map(subset.get("trafficPolicy"))))
    for where, policy in policies:
        if policy.get("tls"):
            yield where, as_map(policy.get("tls"))
        for port in as_list(policy.get("portLevelSettings")):
            port = as_map(port)
            number = as_map(port.get("port")).get("number", "?")
            if port.get("tls"):
                yield f"{where} port {number}", as_map(port.get("tls"))


class ServerVerification(Check):
    info = CheckInfo(
        name="tls-origination-verification",
        description="SIMPLE or MUTUAL TLS origination without caCertificates/credentialName or subjectAltNames.",
        inputs=("DestinationRule",),
        codes=("MW0401",),
        related=(
            "IST0128",
            "IST0129",
        ),
    )

    def analyze(self, ctx: Context) -> None:
        for rule in ctx.for_each("DestinationRule"):
            for where, tls in tls_blocks(rule):
                mode = str(tls.get("mode", "")).upper()
                if mode not in ("SIMPLE", "MUTUAL"):
                    continue
                missing = []
                if not (tls.get("caCertificates") or tls.get("credentialName")):
                    missing.append("caCertificates")
                if not as_list(tls.get("subjectAltNames")):
                    missing.append("subjectAltNames")
                if missing:
                    ctx.report(
                        "MW0401",
                        rule,
                        mode=mode,
                        host=rule.spec.get("host", ""),
                        where=where,
                        missing=" and ".join(missing),
                    )


class InsecureSkipVerify(Check):
    info = CheckInfo(
        name="tls-insecure-skip-verify",
        description="insecureSkipVerify disables upstream certificate verification entirely.",
        inputs=("DestinationRule",),
        codes=("MW0402",),
        related=("IST0128",),
    )

    def analyze(self, ctx: Context) -> None:
        for rule in ctx.for_each("DestinationRule"):
            for where, tls in tls_blocks(rule):
                if tls.get("insecureSkipVerify") is True:
                    ctx.report("MW0402", rule, host=rule.spec.get("host", ""), where=where)


def _unverified(tls: Mapping[str, Any], scoped: bool) -> str:
    """The mode, when SIMPLE/MUTUAL TLS sets no ``caCertificates`` (a ``credentialName``
    counts only on a DestinationRule with a ``workloadSelector``, as in istioctl)."""
    mode = str(tls.get("mode", "")).upper()
    if mode not in ("SIMPLE", "MUTUAL") or tls.get("caCertificates"):
        return ""
    if tls.get("credentialName") and scoped:
        return ""
    return mode


class CaCertificates(Check):
    """istioctl's ``destinationrule.CaCertificateAnalyzer``: IST0128 for the DestinationRule's
    own ``trafficPolicy.tls``, IST0129 once per ``portLevelSettings`` entry; subsets are not
    read. ``tls-origination-verification`` is meshwatch's stricter check (it also wants
    ``subjectAltNames`` and reads subsets)."""

    info = CheckInfo(
        name="tls-origination-ca-certificates",
        description="SIMPLE or MUTUAL TLS origination without caCertificates, at destination and port level (IST0128, IST0129).",
        inputs=("DestinationRule",),
        codes=("MW0403", "MW0404"),
        per_code={"MW0403": ("IST0128",), "MW0404": ("IST0129",)},
    )

    def analyze(self, ctx: Context) -> None:
        for rule in ctx.for_each("DestinationRule"):
            scoped = rule.spec.get("workloadSelector") is not None
            host = rule.spec.get("host", "")
            policy = as_map(rule.spec.get("trafficPolicy"))
            mode = _unverified(as_map(policy.get("tls")), scoped)
            if mode:
                ctx.report("MW0403", rule, mode=mode, host=host)
            for port in as_list(policy.get("portLevelSettings")):
                port = as_map(port)
                mode = _unverified(as_map(port.get("tls")), scoped)
                if mode:
                    number = as_map(port.get("port")).get("number", "?")
                    ctx.report("MW0404", rule, mode=mode, host=host, port=number)
