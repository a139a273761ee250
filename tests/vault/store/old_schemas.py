"""Turning a current vault database back into an older schema, for upgrade tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from vault.store.schema import STATEMENTS


def rewind_schema(db_path: Path, to_version: int) -> None:
    """Undo the schema upgrades above ``to_version`` (the data they added goes too)."""
    with sqlite3.connect(db_path) as db:
        if to_version < 4:
            db.execute("DROP TABLE audit_rotations")  # its triggers go with it
        if to_version < 3:
            for trigger in ("audit_events_no_update", "audit_events_no_delete"):
                db.execute(f"DROP TRIGGER {trigger}")
            for table in ("audit_key", "audit_checkpoints", "audit_signers"):
                db.execute(f"DROP TABLE {table}")
            for index in ("audit_events_by_target", "audit_events_by_action"):
                db.execute(f"DROP INDEX {index}")
            for column in ("prev_hash", "hash", "mac"):
                db.execute(f"ALTER TABLE audit_events DROP COLUMN {column}")
            for statement in STATEMENTS:
                if statement.startswith("CREATE TRIGGER audit_events"):
                    db.execute(statement)
            db.execute("DELETE FROM settings WHERE key = 'audit_head'")
        if to_version < 2:
            for table in ("users", "api_tokens", "entry_links", "web_sessions", "tls_identity"):
                db.execute(f"DROP TABLE {table}")
            db.execute("ALTER TABLE credentials DROP COLUMN owner")
        db.execute("UPDATE settings SET value = ? WHERE key = 'schema_version'", [str(to_version)])
