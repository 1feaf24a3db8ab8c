"""The notebook's choice among configurations: ties go to the more robust model."""

from __future__ import annotations

from meshwatch.detection.tuning import rank_configurations


def _r(trees: int, contamination: object, recall: float, low: float) -> dict[str, object]:
    return {
        "n_estimators": trees,
        "contamination": contamination,
        "recall": recall,
        "low_and_slow": low,
    }


def test_a_tie_on_every_attack_goes_to_more_trees_and_the_default_contamination() -> None:
    # What issue 15 found: every configuration scored 1.0, and the tie went to 50 trees.
    tied = [_r(t, c, 1.0, 0.5) for t in (50, 100, 200) for c in (0.01, "auto", 0.05)]
    best = rank_configurations(tied)[0]
    assert (best["n_estimators"], best["contamination"]) == (200, "auto")


def test_recall_comes_before_robustness() -> None:
    ranked = rank_configurations([_r(200, "auto", 0.8, 0.9), _r(50, 0.01, 0.9, 0.1)])
    assert ranked[0]["n_estimators"] == 50
    ranked = rank_configurations([_r(200, "auto", 0.9, 0.2), _r(50, 0.01, 0.9, 0.6)])
    assert ranked[0]["low_and_slow"] == 0.6  # then low-and-slow recall
