"""Runtime defence, pure: open anomalies, the learned baseline and who is who in, the desired
Istio ``AuthorizationPolicy`` DENY objects out, each through guards (mode, protected
namespaces and principals, caps, TTL, and a collateral simulation of normal traffic under
Istio's evaluation order). No I/O: the runtime applies the result through a sink."""
