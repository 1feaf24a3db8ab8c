"""EnvoyFilter patch operations, as istioctl's ``envoyfilter.EnvoyPatchAnalyzer`` judges them
(IST0151 to IST0155), so a CI gate can rely on the same findings.

Its semantics, followed exactly:
- EnvoyFilters are read in (namespace, name) order; the patches of each in order, and a patch
  without a ``patch`` section ends that filter's patches.
- ADD with ``applyTo`` ROUTE_CONFIGURATION or HTTP_ROUTE is ignored by Istio (IST0153);
  REMOVE there too (IST0154); REPLACE anywhere but HTTP_FILTER or NETWORK_FILTER (IST0152).
- A relative operation (INSERT_BEFORE, INSERT_AFTER, a valid REPLACE or REMOVE) on a filter
  without ``priority`` is IST0151, or IST0155 when an earlier patch (of this filter or one
  before it) set ``match.proxy.proxyVersion`` for the same instance name. The name is the
  patch value's ``name``, else the listener filter chain's filter name (only when the patch
  has a value). MERGE and INSERT_FIRST are not judged.
- One finding per patch, on the EnvoyFilter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshwatch.compliance.analysis import Check, CheckInfo, Context
from meshwatch.istio.resources import as_list, as_map

ROUTE_LEVEL = frozenset({"ROUTE_CONFIGURATION", "HTTP_ROUTE"})
FILTERS = frozenset({"HTTP_FILTER", "NETWORK_FILTER"})
INSERTS = frozenset({"INSERT_BEFORE", "INSERT_AFTER"})


def _instance_name(patch: Mapping[str, Any]) -> object:
    value = as_map(as_map(patch.get("patch")).get("value"))
    if not value:
        return ""
    if "name" in value:
        return value["name"]
    listener = as_map(as_map(patch.get("match")).get("listener"))
    chain = as_map(listener.get("filterChain"))
    return as_map(chain.get("filter")).get("name", "") if chain else ""


class EnvoyFilterPatchOperations(Check):
    info = CheckInfo(
        name="envoy-filter-patch-operations",
        description="EnvoyFilter patches Istio ignores (ADD/REMOVE on routes, REPLACE outside filters) or applies in an order that can change (relative operations without a priority).",
        inputs=("EnvoyFilter",),
        codes=("MW0904", "MW0905", "MW0906", "MW0907", "MW0908"),
        per_code={
            "MW0904": ("IST0151",),
            "MW0905": ("IST0152",),
            "MW0906": ("IST0153",),
            "MW0907": ("IST0154",),
            "MW0908": ("IST0155",),
        },
    )

    def analyze(self, ctx: Context) -> None:
        versioned: list[object] = []  # instance names of patches that set a proxyVersion
        filters = sorted(ctx.for_each("EnvoyFilter"), key=lambda r: (r.namespace, r.name))
        for resource in filters:
            priority = resource.spec.get("priority") or 0
            for index, raw in enumerate(as_list(resource.spec.get("configPatches"))):
                patch = as_map(raw)
                body = as_map(patch.get("patch"))
                if not body:
                    break
                name = _instance_name(patch)
                operation = str(body.get("operation", "")).upper()
                apply_to = str(patch.get("applyTo", "")).upper()
                relative = False
                if operation == "ADD":
                    if apply_to in ROUTE_LEVEL:
                        ctx.report("MW0906", resource, index=index, apply_to=apply_to)
                elif operation == "REMOVE":
                    if apply_to in ROUTE_LEVEL:
                        ctx.report("MW0907", resource, index=index, apply_to=apply_to)
                    else:
                        relative = True
                elif operation == "REPLACE":
                    if apply_to not in FILTERS:
                        ctx.report("MW0905", resource, index=index, apply_to=apply_to or "unset")
                    else:
                        relative = True
                elif operation in INSERTS:
                    relative = True
                if relative and priority == 0:
                    code = "MW0908" if name in versioned else "MW0904"
                    ctx.report(code, resource, index=index, operation=operation)
                proxy = as_map(as_map(patch.get("match")).get("proxy"))
                if proxy.get("proxyVersion"):
                    versioned.append(name)
