"""Resolve callers and callees to stable identities, with caches sized by identities, not calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshwatch.calls import UNKNOWN, Workload
from meshwatch.identity.hosts import cloud_provider, is_ip_literal, mesh_service, strip_port
from meshwatch.identity.workloads import (
    identity_id,
    workload_from_node,
    workload_from_peer,
    workload_from_principal,
)

_MAX_CACHE = 65_536


class IdentityResolver:
    """Turns principals, peer metadata and hosts into ``Workload`` values.

    It learns ``principal → workload`` from the sidecars that stream to meshwatch, so an
    inbound entry whose caller is known only by its certificate still resolves to the caller's
    app when the caller's own sidecar has been seen. A principal shared by several apps (the
    ``default`` service account, say) stays keyed on the principal: it is one identity to mTLS
    and to AuthorizationPolicy, and pretending otherwise would be a guess.
    """

    def __init__(self, trust_domain: str, cluster_domain: str) -> None:
        self.trust_domain = trust_domain
        self.cluster_domain = cluster_domain
        self._by_principal: dict[str, Workload] = {}
        self._ambiguous: set[str] = set()
        self._callers: dict[str, Workload] = {}
        self._hosts: dict[str, Workload] = {}
        self._peers: dict[tuple[Any, ...], Workload] = {}
        self._aliases: list[tuple[str, Workload]] = []
        self.generation = 0
        """Bumped whenever an identity handed out earlier changes; decoders drop their caches."""

    def reporter(self, node_id: str, metadata: Mapping[str, Any]) -> Workload:
        """Identity of a sidecar from its stream's first message; remembered for callers.

        A caller seen earlier by its certificate alone was keyed ``<ns>/sa:<sa>``. When its own
        sidecar now tells us its app, that key is recorded as an alias of the app's key, so the
        graph can merge the two nodes: one actor, one node, whichever side spoke first.
        """
        workload = workload_from_node(node_id, metadata, self.trust_domain)
        principal = workload.principal
        if principal and principal not in self._ambiguous:
            known = self._by_principal.get(principal)
            if known is None:
                self._by_principal[principal] = workload
                fallback = self._callers.pop(principal, None)
                if fallback is not None and fallback.id != workload.id:
                    self._aliases.append((fallback.id, workload))
                    self.generation += 1
            elif known.id != workload.id:
                self._ambiguous.add(principal)
                del self._by_principal[principal]
                self._callers.pop(principal, None)
                self.generation += 1
        return workload

    def take_aliases(self) -> list[tuple[str, Workload]]:
        """Node ids that turned out to name a known workload since the last call."""
        aliases, self._aliases = self._aliases, []
        return aliases

    def caller(self, principal: str) -> Workload:
        """A caller known only by its certificate's SPIFFE URI SAN."""
        cached = self._callers.get(principal)
        if cached is not None:
            return cached
        if not principal:
            return UNKNOWN
        known = self._by_principal.get(principal)
        workload = known if known is not None else workload_from_principal(principal)
        self._remember(self._callers, principal, workload)
        return workload

    def peer(self, metadata: Mapping[str, Any], principal: str) -> Workload:
        """A peer described by Istio's peer-metadata filter state (falls back to the principal)."""
        key = (
            principal,
            tuple(sorted((k, str(v)) for k, v in metadata.items() if not isinstance(v, Mapping))),
        )
        cached = self._peers.get(key)
        if cached is not None:
            return cached
        workload = workload_from_peer(metadata, principal, self.trust_domain) or self.caller(
            principal
        )
        self._remember(self._peers, key, workload)
        return workload

    def host(self, authority: str) -> Workload:
        """The destination named by a host (cluster name, authority or SNI) of an outbound call."""
        cached = self._hosts.get(authority)
        if cached is not None:
            return cached
        host = strip_port(authority).lower().rstrip(".")
        service = mesh_service(host, self.cluster_domain)
        if service is not None:
            workload = Workload(
                id=identity_id(service.namespace, service.service),
                namespace=service.namespace,
                workload=service.service,
                app=service.service,
            )
        elif not host:
            workload = UNKNOWN
        else:
            provider = cloud_provider(host)
            workload = Workload(
                id=f"external/{host}",
                workload=host,
                external=True,
                provider=f"{provider[0]}:{provider[1]}"
                if provider
                else ("ip" if is_ip_literal(host) else ""),
            )
        self._remember(self._hosts, authority, workload)
        return workload

    @staticmethod
    def _remember(cache: dict[Any, Workload], key: Any, value: Workload) -> None:
        if len(cache) >= _MAX_CACHE:
            cache.clear()  # bounded: a flood of distinct hosts cannot grow memory without limit
        cache[key] = value
