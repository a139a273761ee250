"""EncryptedCredential: the strict JWE profile (RFC 7516 compact) gwvault accepts.

Anyone with the gateway certificate can seal a credential offline, in any
language; only the gateway opens it.  The profile (design.md):

* ``alg`` ``ECDH-ES+A256KW`` for a P-256 gateway key, ``RSA-OAEP-256`` for RSA;
  ``enc`` ``A256GCM``; nothing else (no ``zip``, ``dir``, RSA1_5, PBES2, ``crit``).
* protected header members exactly ``alg enc kid gw ds tgt iat ver`` (+ ``epk``
  for ECDH-ES): ``kid`` is the certificate's SHA-256 thumbprint, ``gw`` the
  gateway id, ``ds`` the data source it was entered for, ``tgt`` where it may be
  used (``{"type", "server", "database", "tls", "ca"}``, ``SealedTarget``),
  ``ver`` the profile version (2).  The header is the GCM associated data (RFC
  7516 section 5.1 step 14), so it cannot be changed, and opening checks ``gw``,
  ``ds`` and ``tgt`` against what the blob is being stored or tested for: a blob
  for one data source, server or gateway cannot be replayed into another, and
  "test connection" never sends the secret anywhere but where it was sealed for.
  Profile 1 blobs (no ``tgt``) are refused with ``OutdatedProfileError``.
* payload ``{"type": ..., "username": ..., "secret": ...}``.

Opening fails with one ``IntegrityError`` and one message whatever the cause
(only a profile-1 header, readable by anyone, gets a message of its own).  How
old a blob may be is the caller's policy: ``open_credential`` returns ``iat``.
Pure: no I/O; time and randomness are handed in.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from agent_keys.errors import IntegrityError, InvalidInputError, VaultError
from agent_keys.gateway_identity import (
    OAEP_SHA256,
    GatewayCertificate,
    GatewayPrivateKey,
    b64url,
    ec_private_key_from_random,
)
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret
from vault.format.data_source import AUTH_TYPES, AuthType, DataSource, check_login_shape
from vault.format.jose_codec import b64url_decode, compact_json
from vault.format.strict_json import parse_json_object

ALG_ECDH = "ECDH-ES+A256KW"
ALG_RSA = "RSA-OAEP-256"
ENC = "A256GCM"
PROFILE_VERSION = 2
MAX_TOKEN_CHARS = 32768
_MAX_HEADER_BYTES = 4096  # a target's server (2048) and database (255) are in it
_MAX_RSA_KEY_BYTES = 512  # RSA-4096; larger gateway keys are refused at import
_MAX_CIPHERTEXT_BYTES = 12288
_HEADER_MEMBERS = frozenset({"alg", "enc", "kid", "gw", "ds", "tgt", "iat", "ver"})
_PROFILE_1_MEMBERS = frozenset({"alg", "enc", "kid", "gw", "ds", "iat"})
_TARGET_MEMBERS = frozenset({"type", "server", "database", "tls", "ca"})
_EPK_MEMBERS = frozenset({"kty", "crv", "x", "y"})
_PAYLOAD_MEMBERS = frozenset({"type", "username", "secret"})
_MAX_IAT = 2**53 - 1  # the largest integer every JSON implementation keeps exact

_OPEN_FAILED = (
    "the EncryptedCredential does not open for this gateway and data source"
    " (changed or truncated, sealed for another gateway, data source, type, server,"
    " database or TLS policy, or sealed to a certificate this gateway no longer holds)"
)
_PROFILE_1 = (
    "the EncryptedCredential uses profile 1, which does not name the server it may be"
    " sent to; seal it again (gwvault encrypt-value --type --server, or the page)"
)


class OutdatedProfileError(IntegrityError):
    """A blob sealed with profile 1: refused, with a message that says to reseal."""


@dataclass(frozen=True)
class SealedTarget:
    """The ``tgt`` header member: exactly what decides where and how the secret
    may be sent (README, "The EncryptedCredential format").  ``ca`` is the CA's
    digest (``DataSource.ca_digest``), not the CA itself."""

    type: str
    server: str
    database: str | None
    tls: str
    ca: str | None

    @classmethod
    def of(cls, source: DataSource) -> SealedTarget:
        return cls(source.type, source.server, source.database, source.tls, source.ca_digest())

    @classmethod
    def claimed(cls, header: dict[str, Any]) -> SealedTarget:
        """The target an unauthenticated header claims (``rewrap-value`` reseals a
        blob for the target it names; opening then authenticates it).  Raises
        ``IntegrityError`` for a header without a well-formed one."""
        tgt = header.get("tgt")
        if not isinstance(tgt, dict) or set(tgt) != _TARGET_MEMBERS:
            raise IntegrityError(_OPEN_FAILED)
        text, optional = (tgt["type"], tgt["server"], tgt["tls"]), (tgt["database"], tgt["ca"])
        if not all(isinstance(v, str) for v in text) or not all(
            v is None or isinstance(v, str) for v in optional
        ):
            raise IntegrityError(_OPEN_FAILED)
        return cls(tgt["type"], tgt["server"], tgt["database"], tgt["tls"], tgt["ca"])

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "server": self.server,
            "database": self.database,
            "tls": self.tls,
            "ca": self.ca,
        }


@dataclass(frozen=True)
class OpenedCredential:
    """What opening gives: the payload, and when the sealer says it was sealed."""

    payload: CredentialPayload
    issued_at: int


@dataclass(frozen=True)
class CredentialPayload:
    """What a person entered: auth type, optional user name, the secret."""

    auth: AuthType
    username: str | None
    secret: Secret | None

    def __post_init__(self) -> None:
        check_login_shape(self.auth, self.username, self.secret)


def seal_credential(
    certificate: GatewayCertificate,
    datasource: str,
    target: SealedTarget,
    payload: CredentialPayload,
    *,
    issued_at: int,
    random: RandomSource,
    valid_at: int | None = None,
) -> str:
    """Seal ``payload`` for the gateway of ``certificate``, one data source and its target.

    Raises ``InvalidInputError`` if the certificate is not valid at ``valid_at``
    (default ``issued_at``; a rewrap keeps the original ``iat``).
    """
    checked_at = issued_at if valid_at is None else valid_at
    if not certificate.not_before.timestamp() <= checked_at <= certificate.not_after.timestamp():
        raise InvalidInputError("the gateway certificate is not valid now; get the current one")
    header: dict[str, Any] = {
        "alg": ALG_ECDH if certificate.key_type == "ec-p256" else ALG_RSA,
        "enc": ENC,
        "kid": certificate.thumbprint,
        "gw": certificate.gateway_id,
        "ds": datasource,
        "tgt": target.to_json(),
        "iat": issued_at,
        "ver": PROFILE_VERSION,
    }
    cek = random(32)
    recipient = certificate.public_key()
    if isinstance(recipient, ec.EllipticCurvePublicKey):
        ephemeral = ec_private_key_from_random(random)
        numbers = ephemeral.public_key().public_numbers()
        header["epk"] = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }
        kek = _concat_kdf(ephemeral.exchange(ec.ECDH(), recipient))
        encrypted_key = aes_key_wrap(kek, cek)
    else:
        encrypted_key = recipient.encrypt(cek, OAEP_SHA256)
    protected = b64url(compact_json(header))
    iv = random(12)
    sealed = AESGCM(cek).encrypt(iv, _payload_json(payload), protected.encode("ascii"))
    ciphertext, tag = sealed[:-16], sealed[-16:]
    return ".".join((protected, b64url(encrypted_key), b64url(iv), b64url(ciphertext), b64url(tag)))


def open_credential(
    token: str,
    keys: Mapping[str, GatewayPrivateKey],
    gateway_id: str,
    datasource: str,
    target: SealedTarget,
) -> OpenedCredential:
    """Open an EncryptedCredential sealed for ``gateway_id``, ``datasource`` and ``target``.

    ``keys`` maps certificate thumbprints (``kid``) to the gateway's private keys,
    current and legacy.  Raises ``OutdatedProfileError`` for a profile-1 blob and
    ``IntegrityError`` for any other failure.
    """
    try:
        return _open(token, keys, gateway_id, datasource, target.to_json())
    except OutdatedProfileError:
        raise
    except (ValueError, TypeError, KeyError, InvalidTag, InvalidUnwrap, VaultError) as e:
        # VaultError: a failed RSA decrypt, or a payload of the wrong shape.
        raise IntegrityError(_OPEN_FAILED) from e


def claimed_header(token: str) -> dict[str, Any]:
    """The protected header as it claims to be, before anything is checked
    (``rewrap-value`` learns ``ds`` and ``tgt`` from it, then opens the blob
    for exactly those).  Raises ``IntegrityError`` when it does not parse."""
    try:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise ValueError("size")
        return parse_json_object(b64url_decode(token.split(".", 1)[0], _MAX_HEADER_BYTES))
    except (ValueError, TypeError, VaultError) as e:
        raise IntegrityError(_OPEN_FAILED) from e


def _open(
    token: str,
    keys: Mapping[str, GatewayPrivateKey],
    gateway_id: str,
    datasource: str,
    target: dict[str, Any],
) -> OpenedCredential:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise ValueError("size")
    parts = token.split(".")
    if len(parts) != 5:
        raise ValueError("not compact JWE")
    protected, ek_b64, iv_b64, ct_b64, tag_b64 = parts
    header = parse_json_object(b64url_decode(protected, _MAX_HEADER_BYTES))
    key = _check_header(header, keys, gateway_id, datasource, target)
    encrypted_key = b64url_decode(ek_b64, _MAX_RSA_KEY_BYTES)
    iv = b64url_decode(iv_b64, 12)
    ciphertext = b64url_decode(ct_b64, _MAX_CIPHERTEXT_BYTES)
    tag = b64url_decode(tag_b64, 16)
    if len(iv) != 12 or len(tag) != 16:
        raise ValueError("iv or tag length")
    cek = _content_key(header, key, encrypted_key)
    plaintext = AESGCM(cek.reveal()).decrypt(iv, ciphertext + tag, protected.encode("ascii"))
    return OpenedCredential(_parse_payload(plaintext), header["iat"])


def _check_header(
    header: dict[str, Any],
    keys: Mapping[str, GatewayPrivateKey],
    gateway_id: str,
    ds: str,
    target: dict[str, Any],
) -> GatewayPrivateKey:
    alg = header.get("alg")
    members = set(header) - {"epk"} if alg == ALG_ECDH else set(header)
    if members == _PROFILE_1_MEMBERS:
        raise OutdatedProfileError(_PROFILE_1)
    expected = _HEADER_MEMBERS | {"epk"} if alg == ALG_ECDH else _HEADER_MEMBERS
    if set(header) != expected or header["enc"] != ENC:
        raise ValueError("header members")
    if type(header["ver"]) is not int or header["ver"] != PROFILE_VERSION:
        raise ValueError("profile version")
    if header["gw"] != gateway_id or header["ds"] != ds or not _same_target(header["tgt"], target):
        raise ValueError("sealed for another target")
    iat = header["iat"]
    if type(iat) is not int or not 0 <= iat <= _MAX_IAT:
        raise ValueError("iat")
    kid = header["kid"]
    if not isinstance(kid, str) or kid not in keys:
        raise ValueError("unknown kid")
    key = keys[kid]
    if alg != (ALG_ECDH if key.key_type == "ec-p256" else ALG_RSA):
        raise ValueError("alg does not match the key")
    return key


def _same_target(claimed: object, target: dict[str, Any]) -> bool:
    # Exact members and exact JSON types: 5432 is not "5432", true is not "true".
    return (
        isinstance(claimed, dict)
        and set(claimed) == _TARGET_MEMBERS
        and all(type(claimed[k]) is type(v) and claimed[k] == v for k, v in target.items())
    )


def _content_key(header: dict[str, Any], key: GatewayPrivateKey, encrypted_key: bytes) -> Secret:
    if header["alg"] == ALG_RSA:
        cek = key.decrypt_oaep_sha256(encrypted_key)
    else:
        if len(encrypted_key) != 40:
            raise ValueError("wrapped key length")
        shared = key.agree(_ephemeral_key(header["epk"]))
        cek = Secret(aes_key_unwrap(_concat_kdf(shared.reveal()), encrypted_key))
    if len(cek) != 32:
        raise ValueError("content key length")
    return cek


def _ephemeral_key(epk: object) -> ec.EllipticCurvePublicKey:
    if not isinstance(epk, dict) or set(epk) != _EPK_MEMBERS:
        raise ValueError("epk members")
    if epk["kty"] != "EC" or epk["crv"] != "P-256":
        raise ValueError("epk curve")
    x, y = b64url_decode(epk["x"], 32), b64url_decode(epk["y"], 32)
    if len(x) != 32 or len(y) != 32:
        raise ValueError("epk coordinate length")
    # from_encoded_point checks the point is on P-256 (invalid-curve attacks,
    # RFC 7518 section 8.1 / "Practical Invalid Curve Attacks on TLS-ECDH").
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)


def _concat_kdf(shared_secret: bytes) -> bytes:
    """NIST SP 800-56A Concat KDF as JWA section 4.6.2 specifies it for ECDH-ES+A256KW.

    The 256-bit key is exactly one SHA-256 round: H(counter=1 || Z || OtherInfo),
    with AlgorithmID = the ``alg`` value, empty PartyUInfo/PartyVInfo (no
    ``apu``/``apv``) and SuppPubInfo = keydatalen 256.
    """
    return hashlib.sha256(b"\x00\x00\x00\x01" + shared_secret + _OTHER_INFO).digest()


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


_OTHER_INFO = (
    _length_prefixed(ALG_ECDH.encode("ascii"))
    + _length_prefixed(b"")
    + _length_prefixed(b"")
    + struct.pack(">I", 256)
)


def _payload_json(payload: CredentialPayload) -> bytes:
    return compact_json(
        {
            "type": payload.auth,
            "username": payload.username,
            "secret": payload.secret.reveal_text() if payload.secret is not None else None,
        }
    )


def _parse_payload(plaintext: bytes) -> CredentialPayload:
    body = parse_json_object(plaintext)
    if not set(body) <= _PAYLOAD_MEMBERS or "type" not in body:
        raise ValueError("payload members")
    auth, username, secret = body["type"], body.get("username"), body.get("secret")
    if auth not in AUTH_TYPES:
        raise ValueError("auth type")
    if not isinstance(username, str | None) or not isinstance(secret, str | None):
        raise ValueError("payload types")
    return CredentialPayload(
        auth=auth,
        username=username,
        secret=Secret.from_text(secret) if secret is not None else None,
    )
