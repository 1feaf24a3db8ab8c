"""Destination host names: in-mesh services versus the outside world.

Hosts under ``.svc.<cluster domain>`` (or the short ``name.namespace`` / ``name.namespace.svc``
forms) are Kubernetes services in the mesh. Everything else leaves the mesh and becomes an
external node, and well-known cloud-provider API hosts are classified so that users can see
which provider services their mesh depends on.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# (provider, service-name pattern). Order matters: the first match wins.
_PROVIDER_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "aws",
        re.compile(
            r"(?:^|\.)(?P<svc>[a-z0-9-]+)(?:[.-](?:fips\.)?[a-z]{2}(?:-gov)?-[a-z]+-\d)?\.amazonaws\.com(?:\.cn)?$"
        ),
    ),
    ("aws", re.compile(r"(?:^|\.)(?P<svc>cloudfront)\.net$")),
    ("gcp", re.compile(r"(?:^|\.)(?P<svc>[a-z0-9-]+)\.googleapis\.com$")),
    (
        "gcp",
        re.compile(r"(?:^|\.)(?P<svc>[a-z0-9-]+\.)?(?:run\.app|appspot\.com|cloudfunctions\.net)$"),
    ),
    ("azure", re.compile(r"(?:^|\.)(?P<svc>blob|queue|table|file|dfs)\.core\.windows\.net$")),
    ("azure", re.compile(r"(?:^|\.)(?P<svc>vault)\.azure\.net$")),
    ("azure", re.compile(r"(?:^|\.)(?P<svc>database)\.windows\.net$")),
    (
        "azure",
        re.compile(
            r"(?:^|\.)(?P<svc>servicebus|azurecr|azurewebsites|cognitiveservices)\.(?:windows\.net|io|net|azure\.com)$"
        ),
    ),
    ("azure", re.compile(r"^(?P<svc>login)\.microsoftonline\.com$")),
    ("azure", re.compile(r"^(?P<svc>management)\.azure\.com$")),
    ("oci", re.compile(r"(?:^|\.)(?P<svc>[a-z0-9-]+)\.oraclecloud\.com$")),
    ("ibm", re.compile(r"(?:^|\.)(?P<svc>[a-z0-9-]+)\.cloud\.ibm\.com$")),
    ("alibaba", re.compile(r"(?:^|\.)(?P<svc>[a-z0-9-]+)\.aliyuncs\.com$")),
)
# A bucket-style S3 host ("my-bucket.s3.eu-west-1.amazonaws.com") names the service after the bucket.
_AWS_S3 = re.compile(r"(?:^|\.)s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com$")


@dataclass(frozen=True, slots=True)
class ServiceHost:
    """An in-mesh Kubernetes service host."""

    service: str
    namespace: str


def strip_port(authority: str) -> str:
    """``host:port`` → ``host`` (IPv6 literals keep their brackets stripped)."""
    if authority.startswith("["):
        end = authority.find("]")
        return authority[1:end] if end > 0 else authority
    host, sep, port = authority.rpartition(":")
    return host if sep and port.isdigit() else authority


def mesh_service(host: str, cluster_domain: str) -> ServiceHost | None:
    """The Kubernetes service a host names, or ``None`` for hosts outside the mesh."""
    host = host.lower().rstrip(".")
    suffix = f".svc.{cluster_domain}"
    if host.endswith(suffix):
        parts = host[: -len(suffix)].split(".")
    elif host.endswith(".svc"):
        parts = host[:-4].split(".")
    else:
        return None
    if len(parts) != 2 or not all(parts):
        return None
    return ServiceHost(service=parts[0], namespace=parts[1])


def is_ip_literal(host: str) -> bool:
    """True for IPv4/IPv6 literals (calls straight to an address)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def cloud_provider(host: str) -> tuple[str, str] | None:
    """``(provider, service)`` for well-known cloud API hosts, e.g. ``("aws", "s3")``."""
    host = host.lower().rstrip(".")
    if _AWS_S3.search(host):
        return ("aws", "s3")
    for provider, pattern in _PROVIDER_RULES:
        match = pattern.search(host)
        if match:
            service = (match.group("svc") or "").rstrip(".") or provider
            return (provider, service)
    return None
