"""AuthorizationPolicy → Envoy RBAC: the translation of every field meshwatch emits, then the
rendered config in real Envoys (mTLS, file-based LDS): the attacker gets 403 from RBAC,
every other caller still passes, dry-run blocks nothing but is counted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from meshwatch.localmesh.authz_render import Workload, render, render_policy, string_match
from meshwatch.localmesh.launcher import LocalMesh, free_port
from meshwatch.localmesh.topology import BOOKINFO


def deny(
    name: str,
    app: str,
    rules: list[dict[str, Any]],
    dry_run: bool = False,
    namespace: str = "default",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if dry_run:
        meta["annotations"] = {"istio.io/dry-run": "true"}
    return {
        "metadata": meta,
        "spec": {"action": "DENY", "selector": {"matchLabels": {"app": app}}, "rules": rules},
    }


RATINGS = Workload("default", {"app": "ratings", "version": "v1"}, {9080: 15001})
PRODUCTPAGE = "cluster.local/ns/default/sa/bookinfo-productpage"
REVIEWS = "cluster.local/ns/default/sa/bookinfo-reviews"


def test_principals_become_spiffe_uri_matches() -> None:
    assert string_match(PRODUCTPAGE, "spiffe://") == {"exact": f"spiffe://{PRODUCTPAGE}"}
    assert string_match("cluster.local/ns/default/*", "spiffe://") == {
        "prefix": "spiffe://cluster.local/ns/default/"
    }
    assert string_match("*/sa/bookinfo-reviews", "spiffe://") == {"suffix": "/sa/bookinfo-reviews"}
    assert string_match("*") == {"safe_regex": {"regex": ".+"}}


def test_novel_edge_rule_translates_to_principal_and_listener_port() -> None:
    [policy] = render_policy(
        deny(
            "p",
            "ratings",
            [
                {
                    "from": [{"source": {"principals": [PRODUCTPAGE]}}],
                    "to": [{"operation": {"ports": ["9080"]}}],
                }
            ],
        ),
        RATINGS,
    )
    assert policy == {
        "permissions": [{"destination_port": 15001}],  # Istio's port, mapped to this listener
        "principals": [{"authenticated": {"principal_name": {"exact": f"spiffe://{PRODUCTPAGE}"}}}],
    }


def test_not_paths_become_a_negated_or_of_url_path_matchers() -> None:
    [policy] = render_policy(
        deny(
            "p",
            "ratings",
            [
                {
                    "from": [{"source": {"principals": [REVIEWS]}}],
                    "to": [
                        {"operation": {"ports": ["9080"], "notPaths": ["/health", "/ratings/*"]}}
                    ],
                }
            ],
        ),
        RATINGS,
    )
    assert policy["permissions"] == [
        {
            "and_rules": {
                "rules": [
                    {"destination_port": 15001},
                    {
                        "not_rule": {
                            "or_rules": {
                                "rules": [
                                    {"url_path": {"path": {"exact": "/health"}}},
                                    {"url_path": {"path": {"prefix": "/ratings/"}}},
                                ]
                            }
                        }
                    },
                ]
            }
        }
    ]


def test_hosts_methods_and_or_across_rules() -> None:
    policy = deny(
        "p",
        "ratings",
        [
            {
                "from": [
                    {"source": {"principals": [PRODUCTPAGE]}},
                    {"source": {"principals": [REVIEWS]}},
                ],
                "to": [{"operation": {"hosts": ["evil.example.com"], "methods": ["POST"]}}],
            },
            {"to": [{"operation": {"paths": ["/admin*"]}}]},
        ],
    )
    first, second = render_policy(policy, RATINGS)
    assert first["principals"] == [
        {
            "or_ids": {
                "ids": [
                    {"authenticated": {"principal_name": {"exact": f"spiffe://{PRODUCTPAGE}"}}},
                    {"authenticated": {"principal_name": {"exact": f"spiffe://{REVIEWS}"}}},
                ]
            }
        }
    ]
    assert first["permissions"] == [
        {
            "and_rules": {
                "rules": [
                    {
                        "header": {
                            "name": ":authority",
                            "string_match": {"exact": "evil.example.com", "ignore_case": True},
                        }
                    },
                    {"header": {"name": ":method", "string_match": {"exact": "POST"}}},
                ]
            }
        }
    ]
    assert second == {
        "permissions": [{"url_path": {"path": {"prefix": "/admin"}}}],
        "principals": [{"any": True}],
    }


def test_tcp_drops_http_only_fields_of_a_deny() -> None:
    tcp = Workload("default", {"app": "mongodb"}, {27017: 15002}, http=False)
    [policy] = render_policy(
        deny(
            "p",
            "mongodb",
            [
                {
                    "from": [{"source": {"principals": [REVIEWS]}}],
                    "to": [{"operation": {"ports": ["27017"], "paths": ["/x"]}}],
                }
            ],
        ),
        tcp,
    )
    assert policy["permissions"] == [{"destination_port": 15002}]


def test_selection_dry_run_and_what_is_not_covered() -> None:
    policies = [
        deny("enforced", "ratings", [{}]),
        deny("shadow", "ratings", [{}], dry_run=True),
        deny("elsewhere", "reviews", [{}]),
        deny("other-namespace", "ratings", [{}], namespace="shop"),
        deny("mesh-wide", "ratings", [{}], namespace="istio-system"),
        {
            "metadata": {"name": "allow", "namespace": "default"},
            "spec": {"action": "ALLOW", "rules": [{}]},
        },
        deny(
            "conditional", "ratings", [{"when": [{"key": "request.headers[x]", "values": ["1"]}]}]
        ),
    ]
    rendered = render(policies, RATINGS)
    assert sorted(rendered.rules) == [
        "ns[default]-policy[enforced]-rule[0]",
        "ns[istio-system]-policy[mesh-wide]-rule[0]",
    ]
    assert list(rendered.shadow) == ["ns[default]-policy[shadow]-rule[0]"]
    assert len(rendered.skipped) == 2 and any("ALLOW" in s for s in rendered.skipped)


@pytest.mark.envoy
async def test_rendered_denies_block_the_attacker_in_real_envoys(tmp_path: Path) -> None:
    async with LocalMesh(BOOKINFO, free_port(), tmp_path / "mesh", authz=True) as mesh:
        assert (await mesh.request("productpage-v1", "ratings:9080", "/ratings/0"))[0] == 200
        policies = [
            deny(
                "meshwatch-deny-ratings",
                "ratings",
                [
                    {
                        "from": [{"source": {"principals": [PRODUCTPAGE]}}],
                        "to": [{"operation": {"ports": ["9080"]}}],
                    },
                    {
                        "from": [{"source": {"principals": [REVIEWS]}}],
                        "to": [{"operation": {"ports": ["9080"], "notPaths": ["/ratings/*"]}}],
                    },
                ],
            ),
            deny(
                "shadow-details",
                "details",
                [{"from": [{"source": {"principals": [PRODUCTPAGE]}}]}],
                dry_run=True,
            ),
        ]
        changed = mesh.apply_authz(policies, "7")
        assert set(changed) == {"ratings-v1", "details-v1"}  # only the sidecars selected
        await mesh.wait_listener("ratings-v1", changed["ratings-v1"])
        await mesh.wait_listener("details-v1", changed["details-v1"])
        await asyncio.sleep(1.2)  # the old listener drains (--drain-time-s 1)
        status, body = await mesh.request("productpage-v1", "ratings:9080", "/ratings/0")
        assert status == 403 and b"RBAC" in body
        assert (await mesh.request("reviews-v2", "ratings:9080", "/ratings/0"))[0] == 200
        assert (await mesh.request("reviews-v2", "ratings:9080", "/admin"))[0] == 403
        assert (await mesh.request("productpage-v1", "reviews:9080", "/reviews/0"))[0] == 200
        # dry-run: allowed, and counted as a shadow denial
        assert (await mesh.request("productpage-v1", "details:9080", "/details/0"))[0] == 200
        stats = await mesh.envoy_stats("details-v1", "istio_dry_run_")
        assert any(
            name.endswith("shadow_denied") and value >= 1 for name, value in stats.items()
        ), stats
        # policies withdrawn: traffic flows again
        changed = mesh.apply_authz([], "8")
        await mesh.wait_listener("ratings-v1", changed["ratings-v1"])
        await asyncio.sleep(1.2)
        assert (await mesh.request("productpage-v1", "ratings:9080", "/ratings/0"))[0] == 200
