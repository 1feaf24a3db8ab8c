"""The live communication graph: workload nodes, directed edges, and per-edge sliding-window
statistics built from mergeable parts (counts, sums, quantile sketches). Pure code."""
