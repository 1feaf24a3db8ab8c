"""Gateway TLS credentials, checked as istioctl's ``gateway.SecretAnalyzer`` checks them.

The Secret is looked up where the gateway's pods run, not where the Gateway object lives:
the namespace of the first Pod (by namespace, then name) the Gateway's selector matches. A
``credentialName`` of the form ``ns/name`` names its namespace itself. A Gateway whose
selector matches no Pod is left to ``gateway-selector-not-found``.

* a Secret that is not there is IST0101 (this includes one in the Gateway's namespace when
  the gateway's pods run elsewhere);
* a Secret without a non-empty key pair, whose certificate is not PEM or does not parse, or
  whose certificate is expired or not yet valid at the audit's clock, is IST0161.
"""

from __future__ import annotations

from meshwatch.compliance.analysis import Check, CheckInfo, Context, none_in_input
from meshwatch.istio.certificates import check_credential, secret_data
from meshwatch.istio.resources import as_list, as_map
from meshwatch.istio.workloads import selector_matches


class GatewayCredentials(Check):
    info = CheckInfo(
        name="gateway-credentials",
        description="Gateway credentialNames whose Secret is missing where the gateway runs, or holds no valid certificate.",
        inputs=("Gateway", "Pod", "Secret"),
        codes=("MW0509", "MW0510"),
        per_code={"MW0509": ("IST0101",), "MW0510": ("IST0161",)},
    )

    def analyze(self, ctx: Context) -> None:
        pods = sorted(ctx.for_each("Pod"), key=lambda p: (p.namespace, p.name))
        secrets = ctx.for_each("Secret")
        for gateway in ctx.for_each("Gateway"):
            wanted = as_map(gateway.spec.get("selector"))
            runs_in = next((p.namespace for p in pods if selector_matches(wanted, p.labels)), None)
            if runs_in is None:
                continue
            for index, server in enumerate(as_list(gateway.spec.get("servers"))):
                name = str(as_map(as_map(server).get("tls")).get("credentialName") or "")
                if not name:
                    continue
                namespace, _, short = name.rpartition("/")
                namespace = namespace or runs_in
                secret = ctx.find("Secret", namespace, short)
                if secret is None:
                    note = none_in_input(
                        secrets,
                        "Secrets",
                        "include them, or audit with --cluster --include-secrets",
                    )
                    ctx.report(
                        "MW0509",
                        gateway,
                        secret=f"{namespace}/{short}",
                        index=index,
                        note=note,
                        unconfirmed=not secrets,
                    )
                    continue
                verdict = check_credential(secret_data(secret.body), ctx.now())
                if not verdict.valid:
                    ctx.report(
                        "MW0510",
                        gateway,
                        secret=f"{namespace}/{short}",
                        index=index,
                        problem=verdict.problem,
                    )
