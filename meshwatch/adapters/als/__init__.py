"""gRPC Access Log Service receiver: Envoy sidecars stream to it; it never blocks them."""
