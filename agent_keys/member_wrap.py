"""Wrapping a key to a cluster member's public key (X25519, HKDF-SHA256, AES-256-GCM).

Every member of a gateway cluster holds an X25519 key pair; its private key is
wrapped by the member's own keystore (a key file, or an AES key inside its
HSM).  Any member can then hand a new GMK version to every other one without
touching their keystores: it wraps the GMK to each member's public key::

    0x01 || ephemeral public key (32) || keywrap(HKDF(ECDH, salt, info), key, context)

``salt`` is the two public keys, ``info`` names this format and the context,
and ``keywrap`` is gwvault's one key-wrap format (``agent_keys.keywrap``) with
``context`` as its AAD, so a wrap moved to another member, version or gateway
fails.  A removed member's wraps are deleted and it gets no new ones: a copy of
its keystore opens nothing written after it left.

Pure: no I/O; randomness is handed in.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent_keys.errors import IntegrityError
from agent_keys.keywrap import KEY_BYTES, MAX_WRAPPED_KEY_BYTES, unwrap_key, wrap_key
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret

MEMBER_WRAP_FORMAT = b"\x01"
PUBLIC_KEY_BYTES = 32
_INFO = b"gwvault/member-wrap/v1|"
_FAILED = "a member wrap did not open (another member's, or the stored wrap was changed)"


def new_member_key(random: RandomSource) -> tuple[Secret, bytes]:
    """A fresh X25519 key pair: (private key, public key)."""
    private = Secret(random(KEY_BYTES))
    return private, member_public_key(private)


def member_public_key(private_key: Secret) -> bytes:
    return _private(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def wrap_to_member(public_key: bytes, key: Secret, context: bytes, random: RandomSource) -> bytes:
    """Wrap ``key`` so only the holder of ``public_key``'s private key opens it."""
    ephemeral = _private(Secret(random(KEY_BYTES)))
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kek = _kek(ephemeral.exchange(_public(public_key)), ephemeral_public, public_key, context)
    return MEMBER_WRAP_FORMAT + ephemeral_public + wrap_key(kek, key, context, random)


def unwrap_as_member(private_key: Secret, wrapped: bytes, context: bytes) -> Secret:
    """Open what ``wrap_to_member`` made; ``IntegrityError`` on any mismatch."""
    header = len(MEMBER_WRAP_FORMAT) + PUBLIC_KEY_BYTES
    if not header < len(wrapped) <= header + MAX_WRAPPED_KEY_BYTES:
        raise IntegrityError(_FAILED)
    if wrapped[:1] != MEMBER_WRAP_FORMAT:
        raise IntegrityError(_FAILED)
    ephemeral_public = wrapped[1:header]
    private = _private(private_key)
    own_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    except ValueError as e:  # a low-order point: the shared secret would be all zeros
        raise IntegrityError(_FAILED) from e
    kek = _kek(shared, ephemeral_public, own_public, context)
    return unwrap_key(kek, wrapped[header:], context)


def _kek(shared: bytes, ephemeral_public: bytes, member_public: bytes, context: bytes) -> Secret:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=ephemeral_public + member_public,
        info=_INFO + context,
    )
    return Secret(hkdf.derive(shared))


def _private(private_key: Secret) -> X25519PrivateKey:
    raw = private_key.reveal()
    if len(raw) != KEY_BYTES:
        raise IntegrityError(_FAILED)
    return X25519PrivateKey.from_private_bytes(raw)


def _public(public_key: bytes) -> X25519PublicKey:
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise IntegrityError("a member's public key is 32 bytes")
    try:
        return X25519PublicKey.from_public_bytes(public_key)
    except ValueError as e:
        raise IntegrityError("a member's public key is not an X25519 key") from e
