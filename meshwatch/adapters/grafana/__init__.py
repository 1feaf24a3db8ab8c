"""Grafana: the meshwatch dashboard as code (grafana-foundation-sdk) and its ConfigMap."""
