"""Compliance: audits Istio and Kubernetes configuration for security, offline (YAML in CI)
and live (through the Kubernetes adapter). Modelled on Istio's analyzers: small stateless
checks that see the world only through an analysis context, one message catalogue, one
registry. Pure code, except the catalogue loader which reads the package's messages.yaml."""
