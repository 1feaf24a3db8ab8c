"""Detection: novel edges (deterministic), an isolation forest over per-edge-normalised
window features (statistical), thresholds calibrated to a false-alert budget, and anomaly
records that explain themselves. Pure code (scikit-learn is computation, not I/O)."""
