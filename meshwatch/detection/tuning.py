"""Choosing among tuned configurations (the notebook's last step), as a rule one can test.

On real data most configurations catch the loud attacks equally well, so the choice is made by
ties more often than not. The order: mean recall on the main attacks, then on their
low-and-slow variants, then the more robust model (more trees: less variance between fits),
then the default contamination (``auto``; it does not change scores, only sklearn's offset).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def rank_configurations(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Best first. Each result has ``recall``, ``low_and_slow``, ``n_estimators`` and
    ``contamination``."""
    return sorted(
        results,
        key=lambda r: (
            float(r["recall"]),
            float(r["low_and_slow"]),
            int(r["n_estimators"]),
            r["contamination"] == "auto",
        ),
        reverse=True,
    )
