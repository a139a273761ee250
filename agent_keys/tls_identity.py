"""The HTTPS endpoint's own certificate: separate from the gateway's credential key.

Generated at init (EC P-256, SANs for localhost, 127.0.0.1, ::1 and the host
name, 397 days: the longest lifetime browsers accept) or imported by the admin
from an enterprise CA.  Its private key is stored wrapped by the GMK, like every
other key.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import (
    b64url,
    ec_private_key_from_random,
    same_public_key,
    self_signed_certificate,
)
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret

TLS_LIFETIME = datetime.timedelta(days=397)
MAX_PEM_BYTES = 65536


@dataclass(frozen=True)
class TlsIdentity:
    """A TLS certificate chain (PEM, leaf first) and its private key (PKCS#8 DER)."""

    chain_pem: bytes
    private_key: Secret

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.chain_pem)[0]

    def facts(self) -> dict[str, str]:
        leaf = self.leaf
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return {
            "subject": leaf.subject.rfc4514_string(),
            "issuer": leaf.issuer.rfc4514_string(),
            "names": ", ".join(str(n.value) for n in names),
            "not_after": leaf.not_valid_after_utc.isoformat(),
            "sha256": b64url(leaf.fingerprint(hashes.SHA256())),
        }

    def private_key_pem(self) -> Secret:
        """The key as unencrypted PKCS#8 PEM, only for loading into an SSL context."""
        key = serialization.load_der_private_key(self.private_key.reveal(), password=None)
        return Secret(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def generate_tls_identity(
    host_names: list[str], now: datetime.datetime, random: RandomSource
) -> TlsIdentity:
    """A self-signed server certificate for the endpoint."""
    key = ec_private_key_from_random(random)
    names: list[x509.GeneralName] = [
        x509.DNSName(n) for n in dict.fromkeys(["localhost", *host_names])
    ]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    server_auth = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    extensions = [(x509.SubjectAlternativeName(names), False), (server_auth, False)]
    cert = self_signed_certificate(
        key, "gwvault endpoint", TLS_LIFETIME, extensions, now=now, random=random
    )
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return TlsIdentity(cert.public_bytes(serialization.Encoding.PEM), Secret(der))


def parse_tls_import(chain_pem: bytes, key_pem: Secret, now: datetime.datetime) -> TlsIdentity:
    """Check an admin's certificate chain and key before adopting them.

    Refuses (``InvalidInputError``) a key that does not match the leaf, a leaf
    outside its validity dates or without server authentication, or a weak key.
    """
    if len(chain_pem) > MAX_PEM_BYTES or len(key_pem) > MAX_PEM_BYTES:
        raise InvalidInputError("the certificate or key file is too large")
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
        key = serialization.load_pem_private_key(key_pem.reveal(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as e:
        raise InvalidInputError(
            "the files are not a PEM certificate chain and an unencrypted PEM key"
        ) from e
    leaf = chain[0]
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidInputError("the TLS key must be EC (P-256/P-384) or RSA (2048 bits or more)")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise InvalidInputError("the TLS key must be EC (P-256/P-384) or RSA (2048 bits or more)")
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in (
        "secp256r1",
        "secp384r1",
    ):
        raise InvalidInputError("the TLS key must be EC (P-256/P-384) or RSA (2048 bits or more)")
    try:
        leaf_key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as e:  # e.g. an EC point off the curve
        raise InvalidInputError("the certificate's public key does not parse") from e
    if not same_public_key(leaf_key, key.public_key()):
        raise InvalidInputError("the key does not belong to the first certificate of the chain")
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise InvalidInputError("the certificate is not valid now (check its dates)")
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return TlsIdentity(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain), Secret(der)
    )
