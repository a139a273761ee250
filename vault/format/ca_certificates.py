"""The CA certificates a data source's TLS is verified against, as canonical PEM.

A person hands the vault a CA file (``--tls-ca``, the form's CA field); what is
stored, bound into the at-rest associated data and later given to the TLS
library is this module's canonical form: only the certificates, each parsed as
X.509 and re-encoded, so the stored text holds nothing else (no private key
pasted by mistake, no comments).  Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import b64url

# Leaves room in a 64 KiB request body; a handful of CA certificates is ~10 KiB.
MAX_CA_PEM_CHARS = 32768
MAX_CA_CERTIFICATES = 16
_PEM_LABEL = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----")


def canonical_ca_pem(text: str) -> str:
    """The certificates in ``text`` as canonical PEM; ``InvalidInputError`` otherwise.

    Refuses text that is too long, holds a PEM block other than CERTIFICATE
    (a private key, a CSR), holds no certificate or too many, or a block that
    does not parse as X.509.  The message never quotes the text.
    """
    if len(text) > MAX_CA_PEM_CHARS:
        raise InvalidInputError(
            f"the CA certificates are longer than {MAX_CA_PEM_CHARS} characters"
        )
    labels = _PEM_LABEL.findall(text)
    if any(label != "CERTIFICATE" for label in labels):
        raise InvalidInputError(
            "the CA file holds something other than certificates (a private key?);"
            " give only the CA certificate(s), PEM"
        )
    if not labels:
        raise InvalidInputError("the CA file holds no PEM certificate")
    if len(labels) > MAX_CA_CERTIFICATES:
        raise InvalidInputError(f"the CA file holds more than {MAX_CA_CERTIFICATES} certificates")
    certificates = _certificates(text)
    if len(certificates) != len(labels):
        raise InvalidInputError("the CA file's certificates do not parse as X.509 PEM")
    return "".join(cert.public_bytes(Encoding.PEM).decode("ascii") for cert in certificates)


def ca_digest(ca_pem: str) -> str:
    """base64url SHA-256 over the DER of each certificate, in order: how the sealed
    target and listings name a CA (README).  ``InvalidInputError`` if it does not parse."""
    if len(ca_pem) > MAX_CA_PEM_CHARS:
        raise InvalidInputError(
            f"the CA certificates are longer than {MAX_CA_PEM_CHARS} characters"
        )
    digest = hashlib.sha256()
    for certificate in _certificates(ca_pem):
        digest.update(certificate.public_bytes(Encoding.DER))
    return b64url(digest.digest())


def _certificates(text: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as e:
        raise InvalidInputError("the CA file's certificates do not parse as X.509 PEM") from e
