"""meshwatch's own exception tree.

Third-party errors (grpc, kubernetes, YAML, protobuf) are translated into these at the
boundary that meets them (``raise ... from exc``), so callers handle one vocabulary.
"""


class MeshwatchError(Exception):
    """Base of every error meshwatch raises on purpose."""


class SettingsError(MeshwatchError):
    """A setting is missing, malformed or out of range. The CLI exits with code 2."""


class DecodeError(MeshwatchError):
    """An access-log message could not be decoded (malformed protobuf, missing identity)."""


class CaptureError(MeshwatchError):
    """Writing or reading a Parquet capture failed."""


class LocalMeshError(MeshwatchError):
    """The local mesh (Envoy sidecars for the demo and tests) could not be started."""


class ModelError(MeshwatchError):
    """A model cannot be used (incompatible card, corrupt or untrusted file, too little data)."""


class PolicySinkError(MeshwatchError):
    """A policy sink (Kubernetes API, policy directory) could not list, write or delete.

    ``retryable`` says whether trying again may help (timeouts, 429, 5xx)."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ForeignPolicyError(PolicySinkError):
    """An object meshwatch would write exists and is not meshwatch's (label or field owner):
    it is never touched."""
