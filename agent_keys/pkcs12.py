"""PKCS#12 export of the gateway private key, and import of an admin's key pair.

This module hands a private key out of the vault (pyca's ``hazmat`` rule in
style.md: the danger is in the name).  Its one exporting function,
``export_private_key_pkcs12``, must only be called by a service that writes
an audit entry for the call (``vault.keys.certificates``).

Import checks everything a gateway key pair must be before it is adopted: the
key matches the certificate, the certificate is valid now and is no CA, the key
is EC P-256 or RSA of 3072 to 4096 bits, a KeyUsage extension (when present)
allows what the JWE profile does with the key, and the certificate names this
gateway with the SAN URI ``urn:gwvault:gateway:<id>``.  An enterprise CA must
include that URI in the certificates it issues for a gateway: sealers learn the
gateway id from the certificate alone, and the JWE ``gw`` binding depends on it.

Pure: bytes in, typed objects out; the clock is handed in.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import (
    GATEWAY_URI_PREFIX,
    GatewayCertificate,
    GatewayPrivateKey,
    PrivateKey,
    same_public_key,
)
from agent_keys.pkcs12_mac import strengthen_mac
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret

MAX_IMPORT_BYTES = 65536
# OWASP's 2023 PBKDF2-HMAC-SHA256 floor; the MAC is made as costly (pkcs12_mac).
PKCS12_KDF_ROUNDS = 600_000
_MIN_RSA_BITS = 3072  # the JWE profile's RSA-OAEP-256 gateway key (KeyType "rsa-3072")
_MAX_RSA_BITS = 4096  # vault.format.encrypted_credential bounds the RSA encrypted key at 512 bytes
_KEY_RULE = "the gateway key must be EC P-256 or RSA of 3072 to 4096 bits"
_BAD_PKCS12 = (
    "the file is not a PKCS#12 file or the password is wrong (check --password-file);"
    " nothing was changed"
)


def export_private_key_pkcs12(
    private_key: GatewayPrivateKey,
    certificate: GatewayCertificate,
    password: Secret,
    random: RandomSource,
) -> bytes:
    """The key and certificate as PKCS#12: PBES2 (PBKDF2-SHA256 at ``PKCS12_KDF_ROUNDS``,
    AES-256-CBC), and an HMAC-SHA256 MAC as costly to guess (``pkcs12_mac``).

    The caller checks the password policy and records the export in the audit
    trail.  Raises ``InvalidInputError`` if the key does not match the certificate.
    """
    key = _loaded(private_key)
    if not same_public_key(key.public_key(), certificate.certificate.public_key()):
        raise InvalidInputError("the private key does not belong to the certificate")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.reveal())
    )
    pfx = pkcs12.serialize_key_and_certificates(
        name=certificate.name.encode("utf-8"),
        key=key,
        cert=certificate.certificate,
        cas=None,
        encryption_algorithm=encryption,
    )
    # cryptography MACs at a fixed 2,048 iterations, which would set the price of a guess.
    return strengthen_mac(pfx, password, random)


def load_pkcs12_identity(
    data: bytes, password: Secret, gateway_id: str, now: datetime.datetime
) -> tuple[GatewayPrivateKey, GatewayCertificate]:
    """Read and check a PKCS#12 key pair for gateway ``gateway_id``.

    A wrong password and a damaged file give the same ``InvalidInputError``
    (PKCS#12 cannot tell them apart); every other refusal says what is wrong.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise InvalidInputError(f"the PKCS#12 file is larger than {MAX_IMPORT_BYTES} bytes")
    try:
        key, cert, _chain = pkcs12.load_key_and_certificates(data, password.reveal())
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise InvalidInputError(_BAD_PKCS12) from e
    if key is None or cert is None:
        raise InvalidInputError("the PKCS#12 file must hold a private key and its certificate")
    return check_gateway_identity(key, cert, gateway_id, now)


def load_pem_identity(
    cert_pem: bytes, key_pem: Secret, gateway_id: str, now: datetime.datetime
) -> tuple[GatewayPrivateKey, GatewayCertificate]:
    """Read and check a PEM certificate and an unencrypted PEM private key."""
    if len(cert_pem) > MAX_IMPORT_BYTES or len(key_pem) > MAX_IMPORT_BYTES:
        raise InvalidInputError("the certificate or key file is too large")
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except (ValueError, x509.InvalidVersion) as e:
        raise InvalidInputError("the certificate file is not a PEM X.509 certificate") from e
    try:
        key = serialization.load_pem_private_key(key_pem.reveal(), password=None)
    except TypeError as e:  # an encrypted PEM key
        raise InvalidInputError(
            "the key file is encrypted; put key and certificate in a PKCS#12 file and import that"
        ) from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise InvalidInputError("the key file is not a PEM private key") from e
    return check_gateway_identity(key, cert, gateway_id, now)


def check_gateway_identity(
    key: object, cert: x509.Certificate, gateway_id: str, now: datetime.datetime
) -> tuple[GatewayPrivateKey, GatewayCertificate]:
    """Check that ``key`` and ``cert`` can be gateway ``gateway_id``'s key pair now.

    Raises ``InvalidInputError`` naming the first rule broken.
    """
    private_key = _supported_key(key)
    try:
        cert_key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as e:  # e.g. an EC point off the curve
        raise InvalidInputError("the certificate's public key does not parse") from e
    if not same_public_key(cert_key, private_key.public_key()):
        raise InvalidInputError("the private key does not belong to the certificate")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise InvalidInputError(
            f"the certificate is not valid now (valid {cert.not_valid_before_utc.isoformat()}"
            f" to {cert.not_valid_after_utc.isoformat()})"
        )
    try:
        _check_extensions(cert, is_ec=isinstance(private_key, ec.EllipticCurvePrivateKey))
    except (ValueError, x509.DuplicateExtension) as e:
        raise InvalidInputError("the certificate's extensions do not parse") from e
    try:
        certificate = GatewayCertificate.from_pem(cert.public_bytes(serialization.Encoding.PEM))
    except InvalidInputError as e:
        raise InvalidInputError(_san_rule(gateway_id)) from e
    if certificate.gateway_id != gateway_id:
        raise InvalidInputError(
            f"the certificate is for gateway {certificate.gateway_id}, not this one;"
            f" {_san_rule(gateway_id)}"
        )
    return GatewayPrivateKey(private_key, certificate.key_type), certificate


def _supported_key(key: object) -> PrivateKey:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return key
        # The JWE profile (ECDH-ES+A256KW) is P-256 only: browsers and sealers
        # would need a second epk curve, which the strict profile refuses.
        raise InvalidInputError(f"{_KEY_RULE}; EC {key.curve.name} is not supported")
    if isinstance(key, rsa.RSAPrivateKey):
        if _MIN_RSA_BITS <= key.key_size <= _MAX_RSA_BITS:
            return key
        raise InvalidInputError(f"{_KEY_RULE}; this is RSA-{key.key_size}")
    raise InvalidInputError(f"{_KEY_RULE}; this is a {type(key).__name__}")


def _check_extensions(cert: x509.Certificate, *, is_ec: bool) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca:
        raise InvalidInputError("the certificate is a CA certificate; import the gateway's own")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    # ECDH-ES needs keyAgreement, RSA-OAEP keyEncipherment (RFC 5280 section 4.2.1.3).
    if is_ec and not usage.key_agreement:
        raise InvalidInputError("the certificate's key usage does not allow keyAgreement (ECDH)")
    if not is_ec and not usage.key_encipherment:
        raise InvalidInputError("the certificate's key usage does not allow keyEncipherment")


def _san_rule(gateway_id: str) -> str:
    return (
        "a gateway certificate must carry this gateway's id as the subjectAltName URI"
        f" {GATEWAY_URI_PREFIX}{gateway_id} (ask the CA to include it)"
    )


def _loaded(private_key: GatewayPrivateKey) -> PrivateKey:
    # GatewayPrivateKey keeps its key object private; go through PKCS#8.
    key = serialization.load_der_private_key(private_key.to_pkcs8().reveal(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidInputError("the gateway key is neither EC nor RSA")
    return key
