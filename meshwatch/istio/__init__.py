"""The Istio and Kubernetes object model: resources with their origin, workloads and selector
matching, AuthorizationPolicy and PeerAuthentication readers, the mesh config, and one indexed
snapshot of them. Compliance checks and the policy planner both read the mesh through it;
the files and kube adapters build it. Pure: no I/O (the mesh config's embedded YAML string is
parsed here, which is data, not a file)."""
