"""Random bearer secrets (API tokens, entry links, session ids), stored only as hashes.

A bearer secret is 256 random bits, so a plain SHA-256 is the right storage:
it cannot be brute-forced, and lookup by hash is constant work.  The database
never holds one in clear, so a stolen copy of it signs nobody in.
"""

from __future__ import annotations

import base64
import hashlib

from agent_keys.randomness import RandomSource

_BYTES = 32


def new_bearer_secret(random: RandomSource, prefix: str = "") -> tuple[str, bytes]:
    """A fresh secret as text (shown once) and the hash to store."""
    text = prefix + base64.urlsafe_b64encode(random(_BYTES)).rstrip(b"=").decode("ascii")
    return text, bearer_hash(text)


def bearer_hash(text: str) -> bytes:
    """The stored form of a bearer secret."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
