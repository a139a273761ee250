"""The PKCS#12 integrity MAC, made to cost a guess what the key encryption costs.

A PKCS#12 file is MACed with HMAC under a key the PKCS#12 KDF (RFC 7292
appendix B.2) derives from the password, and readers (OpenSSL, so
``openssl pkcs12`` and cryptography) check that MAC first.  A password guess
therefore costs the MAC's iterations, not PBES2's.  cryptography writes a fixed
2,048 (``default_hmac_kdf_iter`` in its ``src/rust/src/pkcs12.rs``, up to the
installed 50.0.2): ``kdf_rounds`` sets PBKDF2's rounds only, and no option sets
the MAC's.  So a file promised at 600,000 PBKDF2 rounds rejected a wrong
password in 0.1 ms (issue 14 item 12, T-CE-2).

``strengthen_mac`` replaces the file's MacData with one of
``PKCS12_MAC_ITERATIONS`` under a fresh salt.  One PBKDF2-HMAC-SHA256 round is
two SHA-256 compressions, one PKCS#12 KDF iteration is one, so twice the
PBKDF2 rounds make a MAC guess cost what a PBES2 guess does.  The KDF is
composed here from SHA-256 (no maintained library exposes it); before it MACs
anything it must reproduce the library's own MAC of the same file with the
same password, so any difference from OpenSSL's KDF (the password's encoding,
say) stops the export instead of writing a file nobody can open.

Pure: bytes in, bytes out; the salt comes from the randomness source handed in.
"""

from __future__ import annotations

import hashlib
import hmac

from asn1crypto import algos
from asn1crypto import pkcs12 as asn1_pkcs12

from agent_keys.errors import IntegrityError
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret

PKCS12_MAC_ITERATIONS = 1_200_000
"""Twice PBKDF2's 600,000: the same SHA-256 work per guess (see above)."""
MAC_SALT_BYTES = 16
_BLOCK = 64  # SHA-256's input block, "v" in RFC 7292 appendix B.2
_MAC_KEY_ID = 3  # RFC 7292 B.3: the diversifier of a MAC key


def mac_iterations(pfx: bytes) -> int:
    """The MAC's iteration count of a PKCS#12 file; ``ValueError`` if it has none."""
    mac_data = asn1_pkcs12.Pfx.load(pfx)["mac_data"]
    if mac_data.native is None:
        raise ValueError("the PKCS#12 file has no MAC")
    return int(mac_data["iterations"].native)


def strengthen_mac(pfx: bytes, password: Secret, random: RandomSource) -> bytes:
    """``pfx`` with its HMAC-SHA256 MAC redone at ``PKCS12_MAC_ITERATIONS``.

    Raises ``IntegrityError`` if the file's own MAC is not what this KDF
    computes for ``password`` (nothing is to be written then).
    """
    parsed = asn1_pkcs12.Pfx.load(pfx)
    content = parsed["auth_safe"]["content"].native  # RFC 7292 section 4: what is MACed
    old = parsed["mac_data"]
    if old.native is None or old["mac"]["digest_algorithm"]["algorithm"].native != "sha256":
        raise IntegrityError("the PKCS#12 file does not carry the expected HMAC-SHA256 MAC")
    ours = _mac(password, old["mac_salt"].native, int(old["iterations"].native), content)
    if not hmac.compare_digest(ours, old["mac"]["digest"].native):
        raise IntegrityError("the PKCS#12 MAC could not be strengthened; nothing was written")
    salt = random(MAC_SALT_BYTES)
    mac_data = asn1_pkcs12.MacData(
        {
            "mac": algos.DigestInfo(
                {
                    "digest_algorithm": {"algorithm": "sha256"},
                    "digest": _mac(password, salt, PKCS12_MAC_ITERATIONS, content),
                }
            ),
            "mac_salt": salt,
            "iterations": PKCS12_MAC_ITERATIONS,
        }
    )
    stronger = asn1_pkcs12.Pfx(
        {"version": parsed["version"], "auth_safe": parsed["auth_safe"], "mac_data": mac_data}
    )
    return bytes(stronger.dump())


def _mac(password: Secret, salt: bytes, iterations: int, content: bytes) -> bytes:
    key = _mac_key(password, salt, iterations)
    return hmac.digest(key, content, "sha256")


def _mac_key(password: Secret, salt: bytes, iterations: int) -> bytes:
    """RFC 7292 B.2 with SHA-256 for a 32-byte MAC key: one output block, A_1."""
    if iterations < 1:
        raise IntegrityError("a PKCS#12 MAC needs at least one iteration")
    # B.1: the password as a BMPString (UTF-16 big-endian, astral characters as
    # surrogate pairs, as OpenSSL and cryptography encode it) with a NUL at the end.
    bmp = (password.reveal().decode("utf-8") + "\0").encode("utf-16-be")
    diversifier = bytes([_MAC_KEY_ID]) * _BLOCK
    digest = hashlib.sha256(diversifier + _fill(salt) + _fill(bmp)).digest()
    for _ in range(iterations - 1):
        digest = hashlib.sha256(digest).digest()
    return digest


def _fill(data: bytes) -> bytes:
    """Copies of ``data`` to a whole number of blocks, the last one cut (B.2 steps 2-3)."""
    length = _BLOCK * -(-len(data) // _BLOCK)
    return (data * (length // len(data) + 1))[:length] if data else b""
