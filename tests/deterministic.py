"""Deterministic randomness for known-answer tests and fuzz seeds.

Imports nothing of the vault, so the atheris targets can use it before they
instrument the vault's modules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable


def counter_random(seed: bytes = b"gwvault-test") -> Callable[[int], bytes]:
    """A deterministic byte stream (SHA-256 in counter mode) for known-answer tests."""
    counter = 0

    def random(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            counter += 1
            out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        return out[:n]

    return random
