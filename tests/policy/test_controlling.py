"""The controller's guards, each on its own: modes, caps, TTL, collateral, ownership,
adoption, approve and revoke."""

from __future__ import annotations

from dataclasses import replace

from meshwatch.calls import EdgeKey
from meshwatch.detection.anomalies import AnomalyKind
from meshwatch.policy.controlling import Actions, Defence
from meshwatch.policy.objects import ObservedPolicy
from meshwatch.policy.params import DefenceMode, DefenceParams
from tests.factories import make_call
from tests.policy.defence_fixtures import ACTORS, anomaly, baseline

NOVEL = ("default/ratings", "default/details")


def run(
    defence: Defence, now: float = 1001.0, observed=None, recent=list, writable=True, actors=None
) -> Actions:
    return defence.reconcile(
        now, (actors or ACTORS).get, baseline(actors), observed or {}, recent, writable
    )


def observed_from(actions: Actions, previous=None) -> dict[tuple[str, str], ObservedPolicy]:
    """What a sink holds after performing ``actions``."""
    held = dict(previous or {})
    for obj in actions.apply:
        p = ObservedPolicy.of(obj)
        held[p.key] = p
    for key in actions.delete:
        held.pop(key, None)
    return held


def test_modes() -> None:
    states = {}
    for mode in DefenceMode:
        defence = Defence(DefenceParams(mode=mode))
        defence.raised(anomaly(*NOVEL), 1000.0)
        actions = run(defence)
        states[mode] = ([s.state for s in actions.policies], len(actions.apply))
    assert states[DefenceMode.OFF] == (["planned"], 0)
    assert states[DefenceMode.DRY_RUN] == (["dry-run"], 1)
    assert states[DefenceMode.ENFORCE] == (["enforced"], 1)


def test_enforced_objects_carry_no_dry_run_annotation_and_say_why() -> None:
    defence = Defence(DefenceParams(mode=DefenceMode.ENFORCE))
    a = anomaly(*NOVEL)
    defence.raised(a, 1000.0)
    actions = run(defence)
    [obj] = actions.apply
    annotations = obj["metadata"]["annotations"]
    assert "istio.io/dry-run" not in annotations
    assert a.id in annotations["meshwatch.io/anomalies"]
    assert annotations["meshwatch.io/expires"] > annotations["meshwatch.io/created"]
    assert "no collateral" in actions.policies[0].reason


def test_no_sink_still_plans() -> None:
    defence = Defence(DefenceParams(mode=DefenceMode.ENFORCE))
    defence.raised(anomaly(*NOVEL), 1000.0)
    actions = run(defence, writable=False)
    assert actions.apply == [] and [s.state for s in actions.policies] == ["planned"]


def test_collateral_keeps_a_policy_in_dry_run() -> None:
    # details and ratings share one service account: denying ratings' principal to
    # productpage... would also deny nothing known. But reviews and a new caller share
    # reviews' account, and reviews calls ratings normally:
    actors = dict(ACTORS)
    actors["default/intruder"] = replace(ACTORS["default/reviews"], id="default/intruder")
    defence = Defence(DefenceParams(mode=DefenceMode.ENFORCE))
    defence.raised(anomaly("default/intruder", "default/ratings"), 1000.0)
    actions = run(defence, actors=actors)
    [status] = actions.policies
    assert status.state == "dry-run"
    assert "would deny" in status.reason and "default/reviews -> default/ratings" in status.reason
    assert actions.apply[0]["metadata"]["annotations"]["istio.io/dry-run"] == "true"
    # a threshold above the collateral lets it through
    tolerant = Defence(DefenceParams(mode=DefenceMode.ENFORCE, collateral_threshold=5))
    tolerant.raised(anomaly("default/intruder", "default/ratings"), 1000.0)
    assert [s.state for s in run(tolerant, actors=actors).policies] == ["enforced"]


def test_recent_normal_calls_count_as_collateral_too() -> None:
    defence = Defence(DefenceParams(mode=DefenceMode.ENFORCE))
    defence.raised(anomaly("default/reviews", "default/details"), 1000.0)
    # a call the baseline never saw but that is normal now: the same caller on another port
    recent = [
        make_call(999.0, ACTORS["default/reviews"], ACTORS["default/details"], port=9080, path="/x")
    ]
    [status] = run(defence, recent=lambda: recent).policies
    assert status.state == "dry-run" and "GET /x" in status.reason


def test_unknown_caller_identity_keeps_dry_run() -> None:
    actors = {k: v for k, v in ACTORS.items() if k != "default/reviews"}
    defence = Defence(DefenceParams(mode=DefenceMode.ENFORCE))
    defence.raised(anomaly("default/details", "default/ratings"), 1000.0)
    [status] = run(defence, actors=actors).policies
    assert status.state == "dry-run" and "default/reviews" in status.reason


def test_rate_cap_defers_and_never_drops() -> None:
    defence = Defence(DefenceParams(mode=DefenceMode.ENFORCE, max_denies_per_minute=2))
    for source in ("default/ratings", "default/reviews", "default/productpage"):
        defence.raised(
            anomaly(
                source, "default/details" if source != "default/productpage" else "default/ratings"
            ),
            1000.0,
        )
    actions = run(defence)
    assert sum(len(s.edges) for s in actions.policies) == 2
    assert [r.reason for r in actions.refusals] == ["cap-rate"]
    later = run(defence, now=1062.0, observed=observed_from(actions))
    assert sum(len(s.edges) for s in later.policies) == 3 and later.refusals == []


def test_policy_cap_keeps_written_policies_first() -> None:
    defence = Defence(DefenceParams(mode=DefenceMode.ENFORCE, max_policies=1))
    defence.raised(anomaly("default/ratings", "default/details"), 1000.0)
    first = run(defence)
    defence.raised(anomaly("default/ratings", "default/productpage"), 1001.0)
    second = run(defence, now=1002.0, observed=observed_from(first))
    assert [s.name for s in second.policies] == ["meshwatch-deny-details"]
    assert [r.reason for r in second.refusals] == ["cap-policies"]
    assert "1 managed policies reached" in second.refusals[0].detail


def test_ttl_expires_policies_unless_the_anomaly_persists() -> None:
    defence = Defence(DefenceParams(ttl=60.0))
    a = anomaly(*NOVEL)
    defence.raised(a, 1000.0)
    held = observed_from(run(defence))
    defence.still_active([a.edge], 1050.0)  # the incident is still open
    held = observed_from(run(defence, now=1100.0, observed=held), held)
    assert list(held) == [("default", "meshwatch-deny-details")]
    defence.ended(replace(a, last_seen=1050.0), 1100.0)
    actions = run(defence, now=1111.0, observed=held)
    assert actions.delete == [("default", "meshwatch-deny-details")]


def test_persisting_anomaly_does_not_rewrite_its_policy_every_reconcile() -> None:
    defence = Defence(DefenceParams(ttl=600.0))
    a = anomaly(*NOVEL)
    defence.raised(a, 1000.0)
    held = observed_from(run(defence))
    writes = 0
    for now in range(1001, 1200, 10):
        defence.still_active([a.edge], float(now))
        actions = run(defence, now=float(now), observed=held)
        writes += len(actions.apply)
        held = observed_from(actions, held)
    assert writes == 0
    defence.still_active([a.edge], 1400.0)
    assert len(run(defence, now=1400.0, observed=held).apply) == 1  # the expiry moved > ttl/2


def test_foreign_object_of_the_same_name_is_left_alone_and_reported() -> None:
    defence = Defence(DefenceParams(mode=DefenceMode.ENFORCE))
    defence.raised(anomaly(*NOVEL), 1000.0)
    foreign = ObservedPolicy(
        "default", "meshwatch-deny-details", managed=False, spec={"action": "ALLOW"}
    )
    actions = run(defence, observed={foreign.key: foreign})
    assert actions.apply == [] and actions.delete == []
    assert [r.reason for r in actions.refusals] == ["foreign-object"]


def test_unmanaged_policies_are_never_deleted() -> None:
    defence = Defence(DefenceParams())
    foreign = ObservedPolicy("default", "team-policy", managed=False)
    assert run(defence, observed={foreign.key: foreign}).delete == []


def test_restart_adopts_managed_policies() -> None:
    defence = Defence(DefenceParams(mode=DefenceMode.ENFORCE))
    defence.raised(anomaly(*NOVEL), 1000.0)
    held = observed_from(run(defence))
    restarted = Defence(DefenceParams(mode=DefenceMode.ENFORCE))
    assert restarted.adopt(held.values()) == 1
    actions = run(restarted, now=1005.0, observed=held)
    assert actions.apply == [] and actions.delete == []  # same object: nothing to write
    assert [s.state for s in actions.policies] == ["enforced"]


def test_approve_lifts_the_deny_within_one_reconcile() -> None:
    defence = Defence(DefenceParams())
    defence.raised(anomaly(*NOVEL), 1000.0)
    held = observed_from(run(defence))
    assert defence.approve(*NOVEL, None) == [EdgeKey(*NOVEL, 9080)]
    assert run(defence, now=1002.0, observed=held).delete == [("default", "meshwatch-deny-details")]


def test_revoke_withdraws_until_the_anomaly_ends() -> None:
    defence = Defence(DefenceParams())
    a = anomaly(*NOVEL)
    defence.raised(a, 1000.0)
    held = observed_from(run(defence))
    assert defence.revoke(None) == ["default/meshwatch-deny-details"]
    actions = run(defence, now=1002.0, observed=held)
    assert actions.delete == [("default", "meshwatch-deny-details")]
    assert [r.reason for r in actions.refusals] == ["revoked"]
    defence.raised(replace(a, id="x"), 1003.0)  # still the same open incident: stays revoked
    assert run(defence, now=1004.0).policies == []


def test_statistical_path_anomaly_and_novel_edge_share_one_policy() -> None:
    defence = Defence(DefenceParams())
    defence.raised(anomaly(*NOVEL), 1000.0)
    defence.raised(
        anomaly(
            "default/productpage",
            "default/details",
            kind=AnomalyKind.STATISTICAL,
            features=("unseen_path_share",),
        ),
        1000.0,
    )
    [status] = run(defence).policies
    assert len(status.object["spec"]["rules"]) == 2
