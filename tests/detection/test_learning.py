"""Learning in progress as a JSON checkpoint: it comes back exactly, and garbage is refused."""

from __future__ import annotations

import json

import pytest

from meshwatch.calls import EdgeKey
from meshwatch.detection.learning import Learning
from meshwatch.errors import ModelError
from meshwatch.features.rows import FEATURE_COLUMNS, WindowRow


def _learning() -> Learning:
    learning = Learning(calls=42, started=1000.0)
    edge = EdgeKey("shop/web", "shop/cart", 8080)
    learning.edges = {edge, EdgeKey("shop/web", "external/api.stripe.com", 443)}
    for i in range(3):
        values = tuple(float(i + k) for k in range(len(FEATURE_COLUMNS)))
        learning.add(WindowRow(edge, 1060.0 + 60 * i, values, 10 + i), {"/cart/{num}"})
    return learning


def test_a_checkpoint_round_trips_through_json() -> None:
    learning = _learning()
    again = Learning.from_doc(json.loads(json.dumps(learning.to_doc())))
    assert (again.calls, again.started, again.edges) == (42, 1000.0, learning.edges)
    assert again.rows == learning.rows
    assert again.paths == learning.paths
    assert again.seen == learning.seen


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(version=99),
        lambda d: d.update(feature_columns=["x"]),
        lambda d: d.pop("rows"),
        lambda d: d.update(edges=[5]),
        lambda d: d["rows"].update({"a|b|80": [[1.0, 2]]}),
        lambda d: d.update(calls="many"),
    ],
)
def test_a_damaged_checkpoint_is_refused_with_one_line(damage) -> None:  # type: ignore[no-untyped-def]
    doc = _learning().to_doc()
    damage(doc)
    with pytest.raises(ModelError, match="checkpoint"):
        Learning.from_doc(doc)
