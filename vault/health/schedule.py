"""When a credential is next tested: once per interval, at its own phase.

Each credential's phase within the interval comes from its id, so a thousand
credentials tested together once (the first run, or ``credentials test --all``)
spread over the next interval instead of all firing at the same moment again,
and each keeps its slot from one run to the next.  The next test is the first
slot at least half an interval after the last one: never two in a row, never
more than one and a half intervals apart.
"""

from __future__ import annotations

import datetime
import hashlib
import math


def phase_seconds(credential_id: str, every_seconds: int) -> int:
    """The credential's offset within each interval (stable, spread uniformly)."""
    digest = hashlib.sha256(f"gwvault/health-phase|{credential_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % every_seconds


def next_due(credential_id: str, tested_at: datetime.datetime, every_seconds: int) -> str:
    """The ISO 8601 UTC instant of the credential's next test after one at ``tested_at``."""
    phase = phase_seconds(credential_id, every_seconds)
    earliest = tested_at.timestamp() + every_seconds / 2
    slot = math.ceil((earliest - phase) / every_seconds) * every_seconds + phase
    return datetime.datetime.fromtimestamp(slot, datetime.UTC).isoformat(timespec="seconds")
