"""Server certificates in Kubernetes Secrets, read as Istio's gateway SDS reads them.

Pure: the Secret's ``data`` in, a verdict out. Certificates are parsed with ``cryptography``
(never by hand); only the framing Istio applies before parsing is reproduced here:

* the key pair comes from ``cert``/``key`` when both are non-empty, else from
  ``tls.crt``/``tls.key`` (Istio's ``ExtractCertInfo`` order); anything else has no usable
  certificate;
* only the **first** PEM block of the certificate is read, whatever its type, and it may hold
  several DER certificates back to back (Go's ``x509.ParseCertificates``);
* every certificate in it must be valid at the audit's clock (``NotBefore <= now <= NotAfter``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?P<type>[^-\r\n]*)-----\r?\n(?P<body>.*?)-----END (?P=type)-----", re.DOTALL
)
_KEY_PAIRS = (("cert", "key"), ("tls.crt", "tls.key"))
_MAX_DER = 1 << 20  # no certificate chain in a Secret is a megabyte; refuse to walk further


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """Why a Secret cannot serve as a gateway credential (``problem`` empty when it can)."""

    problem: str = ""

    @property
    def valid(self) -> bool:
        return not self.problem


def secret_data(secret: Mapping[str, object]) -> dict[str, bytes]:
    """The Secret's values as bytes: ``data`` is base64 (as the API stores it); ``stringData``
    is merged over it as the API server does on write. A value that is not base64 is kept
    as ``b""`` so it reads as empty, not as valid."""
    out: dict[str, bytes] = {}
    data = secret.get("data")
    if isinstance(data, Mapping):
        for key, value in data.items():
            try:
                out[str(key)] = base64.b64decode(str(value or ""), validate=True)
            except (binascii.Error, ValueError):
                out[str(key)] = b""
    string_data = secret.get("stringData")
    if isinstance(string_data, Mapping):
        for key, value in string_data.items():
            out[str(key)] = str(value or "").encode()
    return out


def check_credential(data: Mapping[str, bytes], now: float) -> CredentialCheck:
    """Whether a gateway can serve with this Secret at ``now`` (seconds since the epoch)."""
    cert = b""
    for cert_key, key_key in _KEY_PAIRS:
        if data.get(cert_key) and data.get(key_key):
            cert = data[cert_key]
            break
    else:
        present = ", ".join(sorted(data)) or "none"
        return CredentialCheck(
            f"no non-empty key pair (cert/key or tls.crt/tls.key); keys present: {present}"
        )
    match = _PEM_BLOCK.search(cert)
    if match is None:
        return CredentialCheck("the certificate is not PEM")
    try:
        der = base64.b64decode(b"".join(match["body"].split()), validate=True)
    except (binascii.Error, ValueError):
        return CredentialCheck("the certificate's PEM block is not base64")
    try:
        certificates = _parse_der_sequence(der)
    except ValueError as exc:
        return CredentialCheck(f"the certificate does not parse: {exc}")
    instant = datetime.fromtimestamp(now, UTC)
    for certificate in certificates:
        subject = certificate.subject.rfc4514_string() or "(no subject)"
        if instant > certificate.not_valid_after_utc:
            return CredentialCheck(
                f"the certificate {subject} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
            )
        if instant < certificate.not_valid_before_utc:
            return CredentialCheck(
                f"the certificate {subject} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
            )
    return CredentialCheck()


def _parse_der_sequence(der: bytes) -> list[x509.Certificate]:
    """DER certificates back to back, each one framed by its outer SEQUENCE header."""
    if not der:
        raise ValueError("empty certificate")
    if len(der) > _MAX_DER:
        raise ValueError("certificate data larger than 1 MiB")
    out: list[x509.Certificate] = []
    offset = 0
    while offset < len(der):
        end = offset + _der_length(der, offset)
        out.append(x509.load_der_x509_certificate(der[offset:end]))
        offset = end
    return out


def _der_length(der: bytes, offset: int) -> int:
    """Total length (header included) of the DER SEQUENCE starting at ``offset``."""
    if len(der) - offset < 2 or der[offset] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    first = der[offset + 1]
    if first < 0x80:
        length, header = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(der) - offset < 2 + count:
            raise ValueError("bad DER length")
        length = int.from_bytes(der[offset + 2 : offset + 2 + count], "big")
        header = 2 + count
    if offset + header + length > len(der):
        raise ValueError("truncated DER certificate")
    return header + length
