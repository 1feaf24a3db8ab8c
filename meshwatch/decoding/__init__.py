"""Decoding: Envoy ALS messages (upb protobufs) in, counted-once ``Call`` values out. Pure code."""
