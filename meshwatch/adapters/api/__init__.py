"""The HTTP API (aiohttp): health, readiness, /metrics and the JSON graph."""
