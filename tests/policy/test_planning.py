"""The planner as a pure function: one case per anomaly kind, TCP versus HTTP, protected
namespaces and principals, and notPaths from learned templates."""

from __future__ import annotations

from dataclasses import replace

import pytest

from meshwatch.detection.anomalies import AnomalyKind
from meshwatch.policy.controlling import Defence
from meshwatch.policy.objects import validate
from meshwatch.policy.params import DefenceParams, EgressGateway
from meshwatch.policy.patterns import istio_match, learned_path_patterns, path_pattern
from meshwatch.policy.planning import plan, policy_name
from meshwatch.policy.threats import Threat, threat_of
from tests.policy.defence_fixtures import ACTORS, anomaly, baseline


def planned(anomalies, params: DefenceParams | None = None, actors=ACTORS):
    defence = Defence(params or DefenceParams())
    for a in anomalies:
        defence.raised(a, 1000.0)
    return plan(list(defence.tracked.values()), actors.get, baseline(), defence.params)


def test_novel_edge_denies_that_principal_to_that_workload_on_its_port() -> None:
    result = planned([anomaly("default/ratings", "default/details")])
    assert result.refusals == []
    [policy] = result.policies
    assert (policy.namespace, policy.name) == ("default", "meshwatch-deny-details")
    assert policy.spec() == {
        "action": "DENY",
        "selector": {"matchLabels": {"app": "details"}},  # never version or pod-template-hash
        "rules": [
            {
                "from": [{"source": {"principals": ["cluster.local/ns/default/sa/ratings"]}}],
                "to": [{"operation": {"ports": ["9080"]}}],
            }
        ],
    }


def test_tcp_novel_edge_uses_only_principals_and_ports() -> None:
    result = planned([anomaly("default/ratings", "default/reviews", port=3306)])
    [rule] = result.policies[0].spec()["rules"]
    operation = rule["to"][0]["operation"]
    assert set(operation) == {"ports"}
    assert set(rule["from"][0]["source"]) == {"principals"}


def test_unseen_paths_deny_only_what_is_outside_the_learned_templates() -> None:
    a = anomaly(
        "default/productpage",
        "default/reviews",
        kind=AnomalyKind.STATISTICAL,
        features=("unseen_path_share", "log_rate"),
    )
    assert threat_of(a) is Threat.UNSEEN_PATHS
    [policy] = planned([a]).policies
    operation = policy.spec()["rules"][0]["to"][0]["operation"]
    assert operation == {"ports": ["9080"], "notPaths": ["/health", "/reviews/*"]}
    # Istio allows * only as a prefix or suffix
    assert all("*" not in p[:-1] for p in operation["notPaths"])


def test_path_templates_become_patterns_that_cover_every_learned_path() -> None:
    assert path_pattern("/reviews/{num}") == "/reviews/*"
    assert path_pattern("/api/{id}/items") == "/api/*"
    assert path_pattern("/health") == "/health"
    assert learned_path_patterns({"/a/{num}", "/a/b", "/a/", "/c"}) == ["/a/*", "/c"]
    for concrete, template in (
        ("/reviews/7", "/reviews/{num}"),
        ("/api/x1/items", "/api/{id}/items"),
    ):
        assert istio_match(path_pattern(template), concrete)


def test_paths_that_cannot_be_told_apart_are_refused_not_denied() -> None:
    base = baseline()
    edge = next(iter(e for e in base.edges if e.destination == "default/ratings"))
    base.edges[edge].paths = {"/{num}"}
    defence = Defence(DefenceParams())
    defence.raised(
        anomaly(
            edge.source,
            edge.destination,
            kind=AnomalyKind.STATISTICAL,
            features=("distinct_paths",),
        ),
        1000.0,
    )
    result = plan(list(defence.tracked.values()), ACTORS.get, base, defence.params)
    assert result.policies == []
    assert [r.reason for r in result.refusals] == ["unbounded-paths"]


def test_volume_on_a_known_edge_is_alert_only_unless_allowed() -> None:
    a = anomaly(
        "default/productpage",
        "default/details",
        kind=AnomalyKind.STATISTICAL,
        features=("log_rate",),
    )
    assert threat_of(a) is Threat.KNOWN_EDGE
    result = planned([a])
    assert result.policies == [] and [r.reason for r in result.refusals] == ["alert-only"]
    [policy] = planned([a], DefenceParams(deny_known_edges=True)).policies
    assert policy.spec()["rules"][0]["to"] == [{"operation": {"ports": ["9080"]}}]


def test_performance_is_never_denied() -> None:
    a = anomaly("default/productpage", "default/details", kind=AnomalyKind.PERFORMANCE)
    result = planned([a], DefenceParams(deny_known_edges=True))
    assert result.policies == [] and [r.reason for r in result.refusals] == ["performance"]


def test_new_external_host_needs_an_egress_gateway() -> None:
    a = anomaly("default/reviews", "external/evil.example.com", port=443)
    result = planned([a])
    assert result.policies == []
    [refusal] = result.refusals
    assert refusal.reason == "not-enforceable" and "no egress gateway" in refusal.detail
    gateway = EgressGateway.parse("istio-system:istio=egressgateway")
    [policy] = planned(
        [a], DefenceParams(egress_gateway=gateway, protected_namespaces=frozenset())
    ).policies
    assert policy.namespace == "istio-system"
    assert policy.spec()["selector"] == {"matchLabels": {"istio": "egressgateway"}}
    assert policy.spec()["rules"][0]["to"] == [{"operation": {"hosts": ["evil.example.com"]}}]


@pytest.mark.parametrize(
    ("source", "target", "params", "reason"),
    [
        ("istio-system/istiod", "default/details", DefenceParams(), "protected-namespace"),
        ("default/ratings", "istio-system/istiod", DefenceParams(), "protected-namespace"),
        ("default/ratings", "meshwatch/meshwatch", DefenceParams(), "protected-namespace"),
        (
            "default/ratings",
            "shop/cart",
            DefenceParams(protected_namespaces=frozenset({"shop"})),
            "protected-namespace",
        ),
        (
            "monitoring/prometheus",
            "default/details",
            DefenceParams(protected_principals=frozenset({"cluster.local/ns/monitoring/*"})),
            "protected-principal",
        ),
        ("unknown", "default/details", DefenceParams(), "no-identity"),
    ],
)
def test_protected_and_unnameable_callers_are_refused(source, target, params, reason) -> None:
    actors = dict(ACTORS)
    actors["shop/cart"] = replace(ACTORS["default/details"], id="shop/cart", namespace="shop")
    result = planned([anomaly(source, target)], params, actors)
    assert result.policies == []
    assert [r.reason for r in result.refusals] == [reason]


def test_one_policy_per_destination_with_deterministic_names_and_order() -> None:
    anomalies = [
        anomaly("default/ratings", "default/details"),
        anomaly("default/reviews", "default/details"),
        anomaly("default/ratings", "default/productpage"),
    ]
    first = planned(anomalies)
    second = planned(list(reversed(anomalies)))
    assert [p.spec() for p in first.policies] == [p.spec() for p in second.policies]
    assert [p.name for p in first.policies] == [
        "meshwatch-deny-details",
        "meshwatch-deny-productpage",
    ]
    assert len(first.policies[0].rules) == 2


def test_names_are_dns_labels_even_for_odd_app_names() -> None:
    name = policy_name("default/Very_Long.App_Name_" + "x" * 80)
    assert len(name) <= 63 and name == name.lower() and name.startswith("meshwatch-deny-")
    assert policy_name("default/a") != policy_name("default/A")  # apps differing in case


def test_every_planned_object_passes_istios_schema() -> None:
    defence = Defence(DefenceParams(deny_known_edges=True))
    for a in (
        anomaly("default/ratings", "default/details"),
        anomaly(
            "default/productpage",
            "default/reviews",
            kind=AnomalyKind.STATISTICAL,
            features=("unseen_path_share",),
        ),
    ):
        defence.raised(a, 1000.0)
    actions = defence.reconcile(1001.0, ACTORS.get, baseline(), {}, list, writable=True)
    assert len(actions.apply) == 2
    for obj in actions.apply:
        validate(obj)
        assert obj["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "meshwatch"}
        assert obj["metadata"]["annotations"]["istio.io/dry-run"] == "true"  # the default mode


def test_schema_rejects_what_istio_would() -> None:
    from meshwatch.policy.objects import PolicyInvalid

    good = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "x", "namespace": "default"},
        "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"ports": ["80"]}}]}]},
    }
    validate(good)
    with pytest.raises(PolicyInvalid, match="action"):
        validate({**good, "spec": {"action": "BLOCK"}})
    with pytest.raises(PolicyInvalid, match="does not know"):
        validate({**good, "spec": {"action": "DENY", "rulez": []}})
