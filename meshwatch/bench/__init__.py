"""Benchmarks that print figures (run with ``meshwatch bench ...``); never timed tests."""
