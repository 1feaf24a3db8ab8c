"""The Kubernetes policy sink: managed AuthorizationPolicies through the API server.

Server-side apply with field manager ``meshwatch``, never forced. Before a write, the object
is read: one that exists without meshwatch's label is foreign and never touched. Transient
failures (timeouts, unreachable, 429, 5xx) are retried with exponential backoff and full
jitter, a bounded number of times; a 409 is an ownership conflict and is not retried; a 404
on delete means it is already gone. Calls block: the runtime runs them in a worker thread.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from meshwatch.adapters.kube.client import (
    REQUEST_TIMEOUT,
    ApiClient,
    KubeError,
    Timeout,
    apply_policy,
    delete_policy,
    get_policy,
    list_policies,
)
from meshwatch.errors import ForeignPolicyError, PolicySinkError
from meshwatch.policy.objects import MANAGED_BY, is_managed

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    attempts: int = 5
    base: float = 0.1
    cap: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * 2**attempt))


def _retryable(exc: KubeError) -> bool:
    return exc.status in (0, 429) or exc.status >= 500


class KubePolicySink:
    name = "kubernetes"

    def __init__(
        self,
        api: ApiClient,
        field_manager: str = "meshwatch",
        backoff: Backoff = Backoff(),
        timeout: Timeout = REQUEST_TIMEOUT,
    ) -> None:
        self.api = api
        self.timeout = timeout
        self.field_manager = field_manager
        self.backoff = backoff
        self.retries = 0
        self._rng = random.Random()  # noqa: S311 (jitter, not secrets)

    def _with_retries(self, what: str, fn: Callable[[], T]) -> T:
        for attempt in range(self.backoff.attempts):
            try:
                return fn()
            except KubeError as exc:
                if not _retryable(exc) or attempt == self.backoff.attempts - 1:
                    raise PolicySinkError(str(exc), retryable=_retryable(exc)) from exc
                self.retries += 1
                delay = self.backoff.delay(attempt, self._rng)
                log.warning("%s failed (%s); retrying in %.2fs", what, exc, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def list(self) -> list[dict[str, Any]]:
        return self._with_retries(
            "list policies",
            lambda: list_policies(self.api, f"{MANAGED_BY[0]}={MANAGED_BY[1]}", self.timeout),
        )

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        current = self._with_retries(
            f"read {namespace}/{name}", lambda: get_policy(self.api, namespace, name, self.timeout)
        )
        if current is not None and not is_managed(current):
            raise ForeignPolicyError(
                f"AuthorizationPolicy {namespace}/{name} exists and is not managed by meshwatch"
            )
        try:
            return self._with_retries(
                f"apply {namespace}/{name}",
                lambda: apply_policy(self.api, obj, self.field_manager, self.timeout),
            )
        except PolicySinkError as exc:
            cause = exc.__cause__
            if isinstance(cause, KubeError) and cause.status == 409:
                raise ForeignPolicyError(
                    f"AuthorizationPolicy {namespace}/{name}: another field manager owns "
                    f"fields meshwatch would set (not forced): {cause.reason}"
                ) from exc
            raise

    def delete(self, namespace: str, name: str) -> bool:
        current = self._with_retries(
            f"read {namespace}/{name}", lambda: get_policy(self.api, namespace, name, self.timeout)
        )
        if current is None:
            return False
        if not is_managed(current):
            raise ForeignPolicyError(
                f"AuthorizationPolicy {namespace}/{name} is not managed by meshwatch: not deleted"
            )
        return self._with_retries(
            f"delete {namespace}/{name}",
            lambda: delete_policy(self.api, namespace, name, self.timeout),
        )

    def close(self) -> None:
        self.api.close()
