"""The HTTP API (aiohttp): health, readiness, /metrics, and the graph, anomalies and baseline
documents of the monitor's read model, behind an optional bearer token."""
