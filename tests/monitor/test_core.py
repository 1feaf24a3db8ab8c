"""The monitor core's own contract: typed events, promotion that never throws, its clock."""

from __future__ import annotations

from meshwatch.calls import WindowSpec
from meshwatch.detection.engine import DetectionParams, Mode
from meshwatch.monitor.events import EdgeAppeared, PromotionFailed
from meshwatch.monitor.replaying import replay_monitor
from tests.factories import make_call, workload

NOW = 1_796_000_000.0


def test_new_edges_are_events_and_a_due_promotion_without_data_is_an_event_not_a_crash() -> None:
    monitor = replay_monitor(
        DetectionParams(window=WindowSpec(2, 1, grace=0), learn_for=4), Mode.OBSERVE
    )
    events = monitor.ingest([make_call(NOW + 0.5, workload("web"), workload("cart"))])
    assert [type(e) for e in events] == [EdgeAppeared]
    for end in (NOW + 2, NOW + 4, NOW + 6, NOW + 8):
        events = monitor.close_window(end)
    assert any(isinstance(e, PromotionFailed) and "need at least" in e.reason for e in events)
    assert monitor.engine.mode is Mode.LEARN, "learning goes on"


def test_learning_time_is_the_drivers_clock_never_an_entrys_claim() -> None:
    """A first entry dated 1970 must not make a two-hour learning period end at once."""
    monitor = replay_monitor(
        DetectionParams(window=WindowSpec(2, 1, grace=0), learn_for=7200), Mode.OBSERVE
    )
    web, cart = workload("web"), workload("cart")
    monitor.ingest([make_call(0.0, web, cart), make_call(NOW - 1, web, cart)])
    events = monitor.close_window(NOW)
    assert not monitor.promotion_due(NOW + 2)
    assert not any(isinstance(e, PromotionFailed) for e in events)
    assert monitor.engine.learning.started == NOW - 2
