"""The default Bookinfo model shipped in models/ loads with the running code and detects."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meshwatch.adapters.files.models import load_bundle
from meshwatch.features.rows import FEATURE_COLUMNS

MODEL = Path(__file__).parents[2] / "models" / "bookinfo.skops"


def test_shipped_model_matches_this_code_and_scores_an_exfiltration_window_above_threshold() -> (
    None
):
    bundle = load_bundle(MODEL, 60.0)  # refuses on any card mismatch
    assert bundle.card.feature_columns == FEATURE_COLUMNS
    assert bundle.card.edge_count >= 5
    assert ("bookinfo/productpage", "bookinfo/reviews", 9080) in bundle.baseline.known_edges
    normal = np.zeros((1, len(FEATURE_COLUMNS)))
    exfil = normal.copy()
    exfil[0, FEATURE_COLUMNS.index("log_bytes_received_per_req")] = np.log(100) / 0.4
    assert (
        bundle.anomaly_scores(normal)[0] < bundle.threshold.value <= bundle.anomaly_scores(exfil)[0]
    )
