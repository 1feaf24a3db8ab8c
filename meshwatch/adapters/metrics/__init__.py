"""Prometheus exposition, on meshwatch's own registry (never the process-global one)."""
