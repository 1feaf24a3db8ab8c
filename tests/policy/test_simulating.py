"""The collateral simulation's Istio evaluation against hand-checked semantics: CUSTOM, then
DENY, then ALLOW; AND within a rule, OR across rules and list entries; selectors and the root
namespace; HTTP-only fields on TCP; dry-run."""

from __future__ import annotations

from typing import Any

import pytest

from meshwatch.policy.simulating import Request, Verdict, evaluate

REVIEWS = (("app", "reviews"), ("version", "v2"))


def policy(
    action: str,
    rules: list[dict[str, Any]] | None,
    namespace: str = "default",
    selector: dict[str, str] | None = None,
    dry_run: bool = False,
    name: str = "p",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"action": action}
    if rules is not None:
        spec["rules"] = rules
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if dry_run:
        meta["annotations"] = {"istio.io/dry-run": "true"}
    return {"metadata": meta, "spec": spec}


def request(principal: str = "cluster.local/ns/default/sa/productpage", **kw: Any) -> Request:
    defaults: dict[str, Any] = {
        "source": "default/productpage",
        "principal": principal,
        "namespace": principal.split("/ns/")[1].split("/", maxsplit=1)[0] if principal else "",
        "destination": "default/reviews",
        "destination_namespace": "default",
        "destination_labels": REVIEWS,
        "port": 9080,
        "method": "GET",
        "path": "/reviews/1",
    }
    defaults.update(kw)
    return Request(**defaults)


def who(principal: str) -> dict[str, Any]:
    return {"from": [{"source": {"principals": [principal]}}]}


PP = "cluster.local/ns/default/sa/productpage"
RATINGS = "cluster.local/ns/default/sa/ratings"


def test_no_policy_allows() -> None:
    assert evaluate([], request()).verdict is Verdict.ALLOWED


def test_deny_wins_over_allow() -> None:
    policies = [policy("ALLOW", [who(PP)]), policy("DENY", [who(PP)], name="d")]
    decision = evaluate(policies, request())
    assert decision.verdict is Verdict.DENIED and decision.policy == "default/d"


def test_allow_policies_deny_whatever_they_do_not_match() -> None:
    policies = [policy("ALLOW", [who(RATINGS)])]
    assert evaluate(policies, request()).verdict is Verdict.DENIED
    assert evaluate(policies, request(RATINGS)).verdict is Verdict.ALLOWED
    # an ALLOW policy without rules allows nothing
    assert evaluate([policy("ALLOW", None)], request(RATINGS)).verdict is Verdict.DENIED


def test_custom_is_evaluated_first_and_delegated() -> None:
    policies = [policy("CUSTOM", [who(PP)]), policy("DENY", [who(PP)])]
    assert evaluate(policies, request()).verdict is Verdict.DELEGATED


def test_and_within_a_rule_or_across_rules() -> None:
    both = {
        "from": [{"source": {"principals": [PP]}}],
        "to": [{"operation": {"methods": ["POST"]}}],
    }
    deny = [policy("DENY", [both])]
    assert evaluate(deny, request()).verdict is Verdict.ALLOWED  # GET: the AND fails
    assert evaluate(deny, request(method="POST")).verdict is Verdict.DENIED
    either = [policy("DENY", [who(RATINGS), {"to": [{"operation": {"methods": ["GET"]}}]}])]
    assert evaluate(either, request()).verdict is Verdict.DENIED  # second rule matches


def test_not_paths_and_wildcards() -> None:
    rule = {
        "from": [{"source": {"principals": [PP]}}],
        "to": [{"operation": {"notPaths": ["/reviews/*", "/health"], "ports": ["9080"]}}],
    }
    deny = [policy("DENY", [rule])]
    assert evaluate(deny, request(path="/reviews/7")).verdict is Verdict.ALLOWED
    assert (
        evaluate(deny, request(path="/health?probe=1")).verdict is Verdict.ALLOWED
    )  # query ignored
    assert evaluate(deny, request(path="/admin")).verdict is Verdict.DENIED
    assert evaluate(deny, request(path="/admin", port=9090)).verdict is Verdict.ALLOWED
    suffix = [policy("DENY", [{"to": [{"operation": {"paths": ["*.php"]}}]}])]
    assert evaluate(suffix, request(path="/x/index.php")).verdict is Verdict.DENIED


@pytest.mark.parametrize(
    ("namespace", "selector", "applies"),
    [
        ("default", {"app": "reviews"}, True),
        ("default", {"app": "reviews", "version": "v1"}, False),
        ("default", None, True),  # namespace-wide
        ("other", None, False),
        ("istio-system", None, True),  # the root namespace applies mesh-wide
    ],
)
def test_which_policies_apply(namespace, selector, applies) -> None:
    deny = [policy("DENY", [who(PP)], namespace=namespace, selector=selector)]
    verdict = evaluate(deny, request()).verdict
    assert verdict is (Verdict.DENIED if applies else Verdict.ALLOWED)


def test_http_only_fields_on_tcp() -> None:
    tcp = request(method="", path="", http=False, port=3306)
    rule = {"from": [{"source": {"principals": [PP]}}], "to": [{"operation": {"methods": ["GET"]}}]}
    # DENY drops the HTTP-only field and denies more; ALLOW with it never matches
    assert evaluate([policy("DENY", [rule])], tcp).verdict is Verdict.DENIED
    assert evaluate([policy("ALLOW", [rule])], tcp).verdict is Verdict.DENIED
    assert evaluate([policy("ALLOW", [who(PP)])], tcp).verdict is Verdict.ALLOWED


def test_plaintext_callers_match_no_principal_list() -> None:
    plaintext = request("")
    assert evaluate([policy("DENY", [who("*")])], plaintext).verdict is Verdict.ALLOWED
    not_principals = [policy("DENY", [{"from": [{"source": {"notPrincipals": ["*"]}}]}])]
    assert evaluate(not_principals, plaintext).verdict is Verdict.DENIED


def test_dry_run_is_logged_not_enforced() -> None:
    deny = [policy("DENY", [who(PP)], dry_run=True)]
    assert evaluate(deny, request()).verdict is Verdict.ALLOWED
    assert evaluate(deny, request(), include_dry_run=True).verdict is Verdict.DENIED
