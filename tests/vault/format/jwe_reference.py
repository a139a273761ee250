"""A second, deliberately plain ECDH-ES+A256KW / A256GCM sealer, for tests only.

It seals any header we give it, so tests can prove the opener's strict checks
refuse headers that are correctly encrypted and authenticated (a tampered
header would fail the GCM tag anyway and prove nothing about the checks).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ecdh_epk(recipient: ec.EllipticCurvePublicKey) -> tuple[dict[str, str], bytes]:
    """A fresh ephemeral key as a JWK, and the A256KW key-encryption key it agrees."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    numbers = ephemeral.public_key().public_numbers()
    epk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64(numbers.x.to_bytes(32, "big")),
        "y": b64(numbers.y.to_bytes(32, "big")),
    }
    z = ephemeral.exchange(ec.ECDH(), recipient)
    alg = b"ECDH-ES+A256KW"
    other = struct.pack(">I", len(alg)) + alg + struct.pack(">III", 0, 0, 256)
    return epk, hashlib.sha256(b"\0\0\0\1" + z + other).digest()


def seal_raw(header: dict[str, Any], kek: bytes, payload: dict[str, Any]) -> str:
    cek, iv = os.urandom(32), os.urandom(12)
    protected = b64(json.dumps(header).encode())
    sealed = AESGCM(cek).encrypt(iv, json.dumps(payload).encode(), protected.encode())
    return ".".join(
        [protected, b64(aes_key_wrap(kek, cek)), b64(iv), b64(sealed[:-16]), b64(sealed[-16:])]
    )
