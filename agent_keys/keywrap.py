"""Wrapping one key under another: AES-256-GCM with the key's context as AAD.

Every wrapped key in gwvault (GMK under a keystore or recovery KEK, data key
under the GMK, gateway private key under the GMK) uses this one format::

    0x01 || nonce (12 bytes) || AES-256-GCM(kek, nonce, key, aad=context)

The context names what the key is and what it belongs to (for example
``b"gwvault/dek/v1|<credential id>|gmk=3"``), so a wrapped key copied into
another row or another gateway fails to unwrap.  Random 96-bit nonces are safe
here: a KEK wraps at most a few million keys in its life, far below the 2^32
messages NIST SP 800-38D allows for random nonces.

Pure: no I/O; randomness is handed in.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent_keys.errors import IntegrityError
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret

WRAP_FORMAT = b"\x01"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# The largest key we wrap is an RSA-3072 PKCS#8 DER (about 1.8 KiB).
MAX_WRAPPED_KEY_BYTES = 8192

_UNWRAP_FAILED = "a wrapped key did not unwrap (wrong key, or the stored key was changed)"


def wrap_key(kek: Secret, key: Secret, context: bytes, random: RandomSource) -> bytes:
    """Wrap ``key`` under the 256-bit ``kek``, bound to ``context``."""
    nonce = random(NONCE_BYTES)
    sealed = AESGCM(_kek_bytes(kek)).encrypt(nonce, key.reveal(), context)
    return WRAP_FORMAT + nonce + sealed


def unwrap_key(kek: Secret, wrapped: bytes, context: bytes) -> Secret:
    """Unwrap what ``wrap_key`` made; raises ``IntegrityError`` on any mismatch."""
    header = len(WRAP_FORMAT) + NONCE_BYTES
    if not (header + TAG_BYTES <= len(wrapped) <= MAX_WRAPPED_KEY_BYTES):
        raise IntegrityError(_UNWRAP_FAILED)
    if wrapped[:1] != WRAP_FORMAT:
        raise IntegrityError(_UNWRAP_FAILED)
    nonce = wrapped[1:header]
    try:
        return Secret(AESGCM(_kek_bytes(kek)).decrypt(nonce, wrapped[header:], context))
    except InvalidTag as e:
        raise IntegrityError(_UNWRAP_FAILED) from e


def _kek_bytes(kek: Secret) -> bytes:
    raw = kek.reveal()
    if len(raw) != KEY_BYTES:
        # A programming error, not an attacker-reachable state: keys are made here.
        raise ValueError("a key-encryption key is 32 bytes")
    return raw
