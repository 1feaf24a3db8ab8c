"""Features: one row per edge per window, in the order ``FEATURE_COLUMNS`` owns, and each
edge's own baseline (median and p99 per feature) to normalise against. Pure code."""
