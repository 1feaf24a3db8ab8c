"""SPIFFE identities as Istio issues them: ``spiffe://<trust-domain>/ns/<ns>/sa/<sa>``."""

from __future__ import annotations

from dataclasses import dataclass

SCHEME = "spiffe://"


@dataclass(frozen=True, slots=True)
class SpiffeId:
    """A parsed Istio workload identity."""

    trust_domain: str
    namespace: str
    service_account: str

    @property
    def uri(self) -> str:
        """The URI SAN form found in certificates."""
        return f"{SCHEME}{self.authz_principal}"

    @property
    def authz_principal(self) -> str:
        """The form AuthorizationPolicy ``principals`` use: the URI without its scheme."""
        return f"{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"


def parse_spiffe(uri: str) -> SpiffeId | None:
    """Parse an Istio SPIFFE URI; ``None`` for anything that is not one (never raises)."""
    if not uri.startswith(SCHEME):
        return None
    parts = uri[len(SCHEME) :].split("/")
    if len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
        return None
    trust_domain, _, namespace, _, service_account = parts
    if not (trust_domain and namespace and service_account):
        return None
    return SpiffeId(trust_domain, namespace, service_account)


def principal_for(trust_domain: str, namespace: str, service_account: str) -> str:
    """The SPIFFE URI of a workload whose service account is known."""
    return SpiffeId(trust_domain, namespace, service_account).uri
