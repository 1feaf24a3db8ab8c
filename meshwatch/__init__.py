"""meshwatch: runtime visibility, anomaly awareness and defence for Istio service meshes."""

__version__ = "0.1.0"
