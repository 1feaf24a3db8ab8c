from __future__ import annotations

import pytest

from meshwatch.identity.clusters import Direction, parse_cluster
from meshwatch.identity.hosts import cloud_provider, mesh_service, strip_port
from meshwatch.identity.resolving import IdentityResolver
from meshwatch.identity.spiffe import parse_spiffe
from meshwatch.identity.workloads import parse_node_id, workload_from_node, workload_from_peer


def test_spiffe_round_trip_and_authz_form() -> None:
    sid = parse_spiffe("spiffe://cluster.local/ns/default/sa/productpage")
    assert sid is not None
    assert (sid.trust_domain, sid.namespace, sid.service_account) == (
        "cluster.local",
        "default",
        "productpage",
    )
    assert sid.authz_principal == "cluster.local/ns/default/sa/productpage"


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "spiffe://cluster.local/ns/default",
        "https://x/ns/a/sa/b",
        "spiffe://td/ns//sa/x",
        "spiffe://td/foo/a/sa/b",
    ],
)
def test_spiffe_rejects_non_istio_ids(uri: str) -> None:
    assert parse_spiffe(uri) is None


@pytest.mark.parametrize(
    ("name", "direction", "port", "subset", "host"),
    [
        (
            "outbound|9080||reviews.default.svc.cluster.local",
            Direction.OUTBOUND,
            9080,
            "",
            "reviews.default.svc.cluster.local",
        ),
        (
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            Direction.OUTBOUND,
            9080,
            "v1",
            "reviews.default.svc.cluster.local",
        ),
        ("inbound|9080||", Direction.INBOUND, 9080, "", ""),
        ("PassthroughCluster", Direction.PASSTHROUGH, 0, "", ""),
        ("BlackHoleCluster", Direction.BLACKHOLE, 0, "", ""),
        ("InboundPassthroughCluster", Direction.INBOUND, 0, "", ""),
        ("outbound|notaport||x", Direction.UNKNOWN, 0, "", ""),
        ("my_static_cluster", Direction.UNKNOWN, 0, "", ""),
        ("", Direction.UNKNOWN, 0, "", ""),
    ],
)
def test_cluster_names(name: str, direction: Direction, port: int, subset: str, host: str) -> None:
    ref = parse_cluster(name)
    assert (ref.direction, ref.port, ref.subset, ref.host) == (direction, port, subset, host)


def test_mesh_hosts_versus_external() -> None:
    assert mesh_service("reviews.default.svc.cluster.local", "cluster.local") is not None
    assert mesh_service("reviews.default.svc", "cluster.local") is not None
    assert mesh_service("api.stripe.com", "cluster.local") is None
    assert mesh_service("reviews.default.svc.other.domain", "cluster.local") is None
    assert strip_port("reviews:9080") == "reviews"
    assert strip_port("[::1]:443") == "::1"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("s3.amazonaws.com", ("aws", "s3")),
        ("my-bucket.s3.eu-west-1.amazonaws.com", ("aws", "s3")),
        ("sts.us-east-1.amazonaws.com", ("aws", "sts")),
        ("dynamodb.us-west-2.amazonaws.com", ("aws", "dynamodb")),
        ("storage.googleapis.com", ("gcp", "storage")),
        ("www.googleapis.com", ("gcp", "www")),
        ("myacct.blob.core.windows.net", ("azure", "blob")),
        ("myvault.vault.azure.net", ("azure", "vault")),
        ("login.microsoftonline.com", ("azure", "login")),
        ("api.stripe.com", None),
        ("evil-amazonaws.com", None),
    ],
)
def test_cloud_provider_classification(host: str, expected: tuple[str, str] | None) -> None:
    assert cloud_provider(host) == expected


def test_node_identity_is_stable_across_pods_and_versions() -> None:
    meta = {
        "NAMESPACE": "default",
        "WORKLOAD_NAME": "reviews-v1",
        "SERVICE_ACCOUNT": "bookinfo-reviews",
        "LABELS": {"app": "reviews", "version": "v1"},
        "CLUSTER_ID": "Kubernetes",
    }
    v1 = workload_from_node(
        "sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local", meta, "cluster.local"
    )
    meta3 = {**meta, "WORKLOAD_NAME": "reviews-v3", "LABELS": {"app": "reviews", "version": "v3"}}
    v3 = workload_from_node(
        "sidecar~10.0.0.9~reviews-v3-xyz.default~default.svc.cluster.local", meta3, "cluster.local"
    )
    assert v1.id == v3.id == "default/reviews"
    assert (v1.version, v3.version) == ("v1", "v3")
    assert v1.principal == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    assert parse_node_id("sidecar~1.2.3.4~pod-1.ns1~ns1.svc.cluster.local") == ("pod-1", "ns1")


def test_istio_peer_struct_lowercase_and_legacy_uppercase() -> None:
    new = workload_from_peer(
        {
            "namespace": "shop",
            "workload": "cart-v2",
            "app": "cart",
            "version": "v2",
            "cluster": "c1",
        },
        "spiffe://cluster.local/ns/shop/sa/cart",
        "cluster.local",
    )
    old = workload_from_peer(
        {"NAMESPACE": "shop", "WORKLOAD_NAME": "cart-v2", "LABELS": {"app": "cart"}},
        "",
        "cluster.local",
    )
    assert new is not None and old is not None
    assert new.id == old.id == "shop/cart"
    assert new.cluster_id == "c1"
    assert workload_from_peer({"cluster": "x"}, "", "cluster.local") is None


def test_resolver_learns_callers_from_reporting_sidecars() -> None:
    resolver = IdentityResolver("cluster.local", "cluster.local")
    principal = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    assert resolver.caller(principal).id == "default/sa:bookinfo-productpage"
    resolver.reporter(
        "sidecar~1.1.1.1~productpage-v1-a.default~default.svc.cluster.local",
        {
            "NAMESPACE": "default",
            "SERVICE_ACCOUNT": "bookinfo-productpage",
            "LABELS": {"app": "productpage"},
        },
    )
    assert resolver.caller(principal).id == "default/productpage"


def test_resolver_keeps_shared_service_accounts_keyed_on_principal() -> None:
    resolver = IdentityResolver("cluster.local", "cluster.local")
    for app in ("a", "b"):
        resolver.reporter(
            f"sidecar~1.1.1.1~{app}-1.ns~ns.svc.cluster.local",
            {"NAMESPACE": "ns", "SERVICE_ACCOUNT": "default", "LABELS": {"app": app}},
        )
    assert resolver.caller("spiffe://cluster.local/ns/ns/sa/default").id == "ns/sa:default"


def test_resolver_hosts() -> None:
    resolver = IdentityResolver("cluster.local", "cluster.local")
    ext = resolver.host("s3.us-east-1.amazonaws.com:443")
    assert (ext.id, ext.external, ext.provider) == (
        "external/s3.us-east-1.amazonaws.com",
        True,
        "aws:s3",
    )
    svc = resolver.host("ratings.default.svc.cluster.local")
    assert (svc.id, svc.external) == ("default/ratings", False)
    assert resolver.host("10.0.0.7:5432").provider == "ip"


def test_resolver_reports_an_alias_when_a_fallback_identity_is_explained() -> None:
    resolver = IdentityResolver("cluster.local", "cluster.local")
    generation = resolver.generation
    early = resolver.caller("spiffe://cluster.local/ns/default/sa/sleep")
    assert early.id == "default/sa:sleep"
    resolver.reporter(
        "sidecar~1.1.1.1~sleep-1.default~default.svc.cluster.local",
        {"NAMESPACE": "default", "SERVICE_ACCOUNT": "sleep", "LABELS": {"app": "sleep"}},
    )
    assert resolver.generation != generation
    ((old, new),) = resolver.take_aliases()
    assert (old, new.id) == ("default/sa:sleep", "default/sleep")
    assert resolver.take_aliases() == []
