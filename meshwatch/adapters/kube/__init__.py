"""Kubernetes API access. The only place meshwatch imports the ``kubernetes`` client."""
