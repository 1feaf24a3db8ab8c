"""``meshwatch bench audit``: time the audit of a generated mesh configuration.

The config looks like a real multi-team mesh: namespaces with workloads, Services,
AuthorizationPolicies (some with mistakes), PeerAuthentications, DestinationRules, Gateways
and VirtualServices. It is rendered to YAML and read back, so the figures cover parsing too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import yaml

from meshwatch.adapters.files.manifests import LoadResult, resources_from_text
from meshwatch.compliance.auditing import audit
from meshwatch.istio.snapshot import Snapshot


def generate(total: int, seed: int = 5) -> list[dict[str, Any]]:
    """About ``total`` objects spread over namespaces like a real cluster's."""
    rng = random.Random(seed)
    namespaces = max(1, total // 50)
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"},
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": "istio-system"},
            "spec": {"mtls": {"mode": "STRICT"}},
        },
    ]
    per_ns = (total - namespaces) // namespaces
    for n in range(namespaces):
        ns = f"team-{n}"
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"istio-injection": "enabled"}},
            }
        )
        apps = max(1, per_ns * 2 // 5)
        for a in range(apps):
            app = f"svc{a}"
            objects.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": app, "namespace": ns},
                    "spec": {
                        "selector": {"matchLabels": {"app": app}},
                        "template": {
                            "metadata": {"labels": {"app": app, "version": "v1"}},
                            "spec": {
                                "serviceAccountName": app if a % 7 else "default",
                                "containers": [{"name": app, "image": f"{app}:1"}],
                            },
                        },
                    },
                }
            )
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": app, "namespace": ns},
                    "spec": {
                        "selector": {"app": app},
                        "ports": [{"name": "http" if a % 5 else "tcp-db", "port": 8080}],
                    },
                }
            )
        rest = per_ns - 2 * apps
        for p in range(max(0, rest)):
            kind = rng.choices(("ap", "pa", "dr", "gw", "vs"), weights=(6, 1, 1, 1, 1))[0]
            app = f"svc{rng.randrange(apps)}"
            if kind == "ap":
                action = rng.choice(("ALLOW", "ALLOW", "DENY"))
                rule: dict[str, Any] = {
                    "from": [
                        {
                            "source": {
                                "principals": [f"cluster.local/ns/{ns}/sa/svc{rng.randrange(apps)}"]
                            }
                        }
                    ]
                }
                if rng.random() < 0.2:
                    rule = {"to": [{"operation": {"paths": ["/admin"], "methods": ["GET"]}}]}
                objects.append(
                    {
                        "apiVersion": "security.istio.io/v1",
                        "kind": "AuthorizationPolicy",
                        "metadata": {"name": f"ap-{p}", "namespace": ns},
                        "spec": {
                            "selector": {"matchLabels": {"app": app}},
                            "action": action,
                            "rules": [rule],
                        },
                    }
                )
            elif kind == "pa":
                objects.append(
                    {
                        "apiVersion": "security.istio.io/v1",
                        "kind": "PeerAuthentication",
                        "metadata": {"name": f"pa-{p}", "namespace": ns},
                        "spec": {
                            "selector": {"matchLabels": {"app": app}},
                            "mtls": {"mode": rng.choice(("STRICT", "PERMISSIVE"))},
                        },
                    }
                )
            elif kind == "dr":
                objects.append(
                    {
                        "apiVersion": "networking.istio.io/v1",
                        "kind": "DestinationRule",
                        "metadata": {"name": f"dr-{p}", "namespace": ns},
                        "spec": {
                            "host": f"{app}.{ns}.svc.cluster.local",
                            "trafficPolicy": {
                                "tls": {"mode": rng.choice(("ISTIO_MUTUAL", "DISABLE"))}
                            },
                        },
                    }
                )
            elif kind == "gw":
                objects.append(
                    {
                        "apiVersion": "networking.istio.io/v1",
                        "kind": "Gateway",
                        "metadata": {"name": f"gw-{p}", "namespace": ns},
                        "spec": {
                            "selector": {"istio": "ingressgateway"},
                            "servers": [
                                {
                                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                                    "hosts": [f"{app}.example.com"],
                                    "tls": {"mode": "SIMPLE", "credentialName": f"{app}-cert"},
                                }
                            ],
                        },
                    }
                )
            else:
                objects.append(
                    {
                        "apiVersion": "networking.istio.io/v1",
                        "kind": "VirtualService",
                        "metadata": {"name": f"vs-{p}", "namespace": ns},
                        "spec": {
                            "hosts": [f"{app}.example.com"],
                            "gateways": [f"gw-{p}"],
                            "http": [{"route": [{"destination": {"host": app}}]}],
                        },
                    }
                )
    return objects


def run_audit_benchmark(total: int) -> Iterator[str]:
    """Print parse and audit times for ``total`` generated resources, and the scaling."""
    yield f"meshwatch bench audit: generated mesh config, {total:,} resources"
    for size in (total // 4, total // 2, total):
        objects = generate(size)
        text = yaml.safe_dump_all(objects, sort_keys=False)
        t0 = time.perf_counter()
        loaded = LoadResult()
        resources_from_text(text, "<generated>", loaded)
        t1 = time.perf_counter()
        result = audit(Snapshot.build(loaded.resources, time.time()))
        t2 = time.perf_counter()
        yield (
            f"{len(loaded.resources):>6,} resources: parse {t1 - t0:6.3f}s  audit {t2 - t1:6.3f}s  "
            f"total {t2 - t0:6.3f}s  findings {len(result.findings):,}"
        )
