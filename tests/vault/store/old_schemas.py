"""Turning a current vault database back into an older schema, for upgrade tests."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from vault.store.schema import STATEMENTS


def rewind_schema(db_path: Path, to_version: int) -> None:
    """Undo the schema upgrades above ``to_version`` (the data they added goes too)."""
    with sqlite3.connect(db_path) as db:
        if to_version < 4:
            db.execute("ALTER TABLE credentials DROP COLUMN issued_at")
            for column in ("type", "server", "database", "tls", "ca_pem", "tests_used"):
                db.execute(f"ALTER TABLE entry_links DROP COLUMN {column}")
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


def rewind_keystore_binding(data_dir: Path, legacy_setting: dict[str, str]) -> None:
    """Turn a vault back into the layout before the binding file: no
    ``keystore.json``, no binding digest, and the keystore named in the
    database setting ``keystore`` (as gwvault wrote it then)."""
    (data_dir / "keystore.json").unlink()
    with sqlite3.connect(data_dir / "vault.db") as db:
        db.execute("DELETE FROM settings WHERE key = 'keystore_binding_sha256'")
        db.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('keystore', ?)",
            [json.dumps(legacy_setting)],
        )
