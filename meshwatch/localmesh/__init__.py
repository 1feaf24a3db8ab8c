"""A local mesh of real Envoy sidecars configured like Istio's, for the demo and the tests.

Each workload is a small aiohttp service behind its own Envoy: an mTLS inbound listener with a
SPIFFE certificate, a plaintext outbound listener its app sends to, Istio-style node metadata
and cluster names, and HTTP and TCP gRPC access loggers pointing at meshwatch.
"""
