"""gRPC Access Log Service receiver: Envoy sidecars stream to it; it never blocks them. It
parses each message, reads the stream's identity once, and queues (identity, message) for
the monitor core, which decodes the entries."""
