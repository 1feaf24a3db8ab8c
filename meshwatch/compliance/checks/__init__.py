"""The checks, one module per area. Each check is registered in ``compliance.registry``."""
