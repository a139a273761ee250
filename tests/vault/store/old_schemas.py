"""Turning a current vault database back into an older schema, for upgrade tests,
and storing a credential as gwvault did before TLS policies (binding version 1)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from agent_keys.secret import Secret
from vault.format.data_source import DataSource
from vault.format.envelope import CredentialBinding, seal_at_rest
from vault.gateway import Gateway
from vault.store.records import CredentialRecord
from vault.store.schema import STATEMENTS


def store_version_1_credential(
    gateway: Gateway, name: str, source: DataSource, username: str, secret: Secret
) -> CredentialRecord:
    """A basic-auth credential sealed with the AAD of binding version 1 (no TLS facts)."""
    binding = CredentialBinding(
        gateway_id=gateway.gateway_id, credential_id=str(uuid.uuid4()), name=name, version=1,
        type=source.type, server=source.server, database=source.database, auth="basic",
        username=username, binding_version=1,
    )  # fmt: skip
    sealed = seal_at_rest(gateway.master_key, binding, secret, gateway.context.random)
    now = gateway.context.now_iso()
    record = CredentialRecord(binding, sealed, now, now, owner=gateway.context.actor)
    with gateway.store.write():
        gateway.store.save_credential(record)
    return record


def rewind_schema(db_path: Path, to_version: int) -> None:
    """Undo the schema upgrades above ``to_version`` (the data they added goes too)."""
    with sqlite3.connect(db_path) as db:
        if to_version < 4:
            for column in ("binding_version", "tls", "ca_pem"):
                db.execute(f"ALTER TABLE credentials DROP COLUMN {column}")
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
