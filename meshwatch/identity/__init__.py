"""Who is who: turns SPIFFE principals, Envoy node metadata, Istio peer metadata, upstream
cluster names and external host names into stable ``Workload`` identities. Pure code."""
