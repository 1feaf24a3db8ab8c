"""The one registry of checks. A check that is not listed here does not run (a meta-test
fails if a Check subclass is missing)."""

from __future__ import annotations

from meshwatch.compliance.analysis import Check
from meshwatch.compliance.checks import (
    authentication,
    authorization,
    egress,
    envoy_filters,
    hygiene,
    ingress,
    injection,
    mtls,
    tls_origination,
    wiring,
)

ALL_CHECKS: tuple[Check, ...] = (
    mtls.MeshWideStrictMtls(),
    mtls.MtlsDowngrade(),
    mtls.DestinationRuleDisablesMtls(),
    mtls.IdentityPolicyWithoutStrictMtls(),
    authorization.DefaultDeny(),
    authorization.WorkloadCoverage(),
    authorization.AllowAll(),
    authorization.MatchPatterns(),
    authorization.HttpOnlyDenyOnTcp(),
    authorization.MissingNamespaces(),
    authorization.SelectorMatchesNothing(),
    authorization.ForeignTrustDomain(),
    authorization.PathNormalization(),
    authentication.TokenRequired(),
    authentication.JwksHttps(),
    tls_origination.ServerVerification(),
    tls_origination.InsecureSkipVerify(),
    ingress.GatewayWildcardHosts(),
    ingress.GatewayTls(),
    ingress.GatewayCredential(),
    ingress.VirtualServiceWildcardHosts(),
    egress.OutboundAllowAny(),
    egress.EgressSidecar(),
    egress.WildcardServiceEntry(),
    injection.NamespaceInjection(),
    injection.InjectionOptOut(),
    injection.ProxyUid(),
    injection.ProxyUidElsewhere(),
    injection.TrafficExclusion(),
    wiring.AlsProviders(),
    wiring.AlsClusterHttp2(),
    hygiene.DeprecatedApis(),
    hygiene.EnvoyFilterInventory(),
    envoy_filters.EnvoyFilterPatchOperations(),
    hygiene.DefaultServiceAccount(),
)
