"""The randomness source the pure crypto code is handed.

The crypto core never reaches for ``os.urandom`` itself: the service layer hands
it ``system_random`` and known-answer tests hand it a fixed stream, so the
same inputs give the same bytes (python-tuf's "no hidden I/O" rule).
"""

from __future__ import annotations

import os
from collections.abc import Callable

RandomSource = Callable[[int], bytes]
"""``random(n)`` returns ``n`` unpredictable bytes."""


def system_random(n: int) -> bytes:
    """The operating system's CSPRNG."""
    return os.urandom(n)
