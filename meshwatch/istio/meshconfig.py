"""The mesh config, from the ConfigMap ``istio`` (``data.mesh``, a YAML string) or an
IstioOperator's ``spec.meshConfig``. Parsing that embedded YAML string is the only reason
this pure module imports a YAML parser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from meshwatch.istio.resources import MESH_CONFIG, Resource


def mesh_config_resource(obj: Mapping[str, Any], file: str, line: int) -> Resource | None:
    """A MeshConfig resource from the istio ConfigMap or an IstioOperator; None otherwise."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    name = str(meta.get("name", "")) if isinstance(meta, Mapping) else ""
    namespace = (
        str(meta.get("namespace", "istio-system")) if isinstance(meta, Mapping) else "istio-system"
    )
    kind = obj.get("kind")
    mesh: Any = None
    if kind == "ConfigMap" and (name == "istio" or name.startswith("istio-")):
        data = obj.get("data")
        text = data.get("mesh") if isinstance(data, Mapping) else None
        if isinstance(text, str):
            mesh = yaml.safe_load(text)  # raises yaml.YAMLError; callers report it
    elif kind == "IstioOperator":
        spec = obj.get("spec")
        mesh = spec.get("meshConfig") if isinstance(spec, Mapping) else None
    if not isinstance(mesh, Mapping):
        return None
    return Resource(
        "install.istio.io/v1alpha1", MESH_CONFIG, namespace, name or "mesh", mesh, file, line
    )
