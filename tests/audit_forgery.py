"""What a database writer without the audit key can add to a SQLite vault's trail."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from vault.format.audit_chain import AuditFields, entry_digest


def append_forged_entry(db_path: Path, target: str, action: str, mac: bytes | None) -> None:
    """A new newest entry, chained onto the last one (its digest right), with
    ``mac`` (None, or made up: the key is not at hand)."""
    with sqlite3.connect(db_path) as db:
        seq, prev = db.execute(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        fields = AuditFields(seq + 1, "2026-01-01T00:00:00+00:00", "os:mallory", "cli", action,
                             target, "ok", "f" * 32, "{}")  # fmt: skip
        db.execute(
            "INSERT INTO audit_events (seq, at, actor, channel, action, target, outcome,"
            " request_id, details, prev_hash, hash, mac) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [*vars(fields).values(), prev, entry_digest(prev, fields), mac],
        )
