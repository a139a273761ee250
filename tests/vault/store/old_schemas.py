"""Turning a current vault database back into an older schema, for upgrade tests,
and storing a credential as gwvault did before TLS policies (binding version 1)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from dataclasses import replace
from pathlib import Path

from agent_keys.master_key import MasterKey
from agent_keys.randomness import system_random
from agent_keys.secret import Secret
from vault.format.data_source import DataSource
from vault.format.envelope import CredentialBinding, seal_at_rest
from vault.gateway import Gateway
from vault.store.records import CredentialRecord, identity_wrap_context
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
    record = replace(record, mac=gateway.rows.sealed("credentials", record.sealed_row()))
    with gateway.store.write():
        gateway.store.save_credential(record)
        gateway.audit.record("credential.created", name, credential_id=binding.credential_id,
                             version=1)  # fmt: skip
    return record


def rewind_schema(db_path: Path, to_version: int, master_key: MasterKey) -> None:  # noqa: PLR0912 - one branch per schema step
    """Undo the schema upgrades above ``to_version`` (the data they added goes too);
    ``master_key`` rewraps the gateway keys the way schema 3 wrapped them."""
    if to_version == 3:
        # The vault's first entries record its rows being sealed (schema 4); they
        # are chained, so a schema-3 trail cannot be made without them.  Upgrade
        # tests start from schema 2, which passes through 3 on the way up.
        raise ValueError("rewind to schema 2 or 1: a schema-3 trail cannot drop chained entries")
    # Closed on return, not when collected: a later connection may need the
    # file to itself (to change its journal mode).
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        if to_version < 8:
            for table in ("audit_sinks", "audit_sink_places"):  # their triggers go with them
                db.execute(f"DROP TABLE {table}")
        if to_version < 7:
            for table in ("notify_events", "notify_sinks", "notify_deliveries"):
                db.execute(f"DROP TABLE {table}")
            db.execute("DROP TABLE credential_status")
            db.execute("DROP INDEX credentials_by_purge")
            for column in ("disabled_at", "deleted_at", "purge_after", "expires_at",
                           "rotate_every", "contact"):  # fmt: skip
                db.execute(f"ALTER TABLE credentials DROP COLUMN {column}")
        if to_version < 6:
            # A dropped table's triggers go with it (the members' generation ones).
            for table in ("member_wraps", "members", "leases"):
                db.execute(f"DROP TABLE {table}")
        if to_version < 5:
            triggers = db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                " AND name LIKE '%_bumps_generation'"
            ).fetchall()
            for (trigger,) in triggers:
                db.execute(f"DROP TRIGGER {trigger}")
            db.execute("DROP TABLE facts_generation")
            db.execute("DROP INDEX audit_events_by_target_action")
            db.execute("DROP TABLE IF EXISTS audit_verified")
            for trigger in ("after_insert", "after_delete", "after_rewrap"):
                db.execute(f"DROP TRIGGER credential_counts_{trigger}")
            db.execute("DROP TABLE credential_counts")
        if to_version < 4:
            _rewrap_gateway_keys_as_schema_3(db, master_key)
            for table in ("users", "api_tokens", "entry_links", "web_sessions", "credentials",
                          "gateway_keys", "settings"):  # fmt: skip
                db.execute(f"ALTER TABLE {table} DROP COLUMN mac")
            db.execute("DELETE FROM settings WHERE key = 'rows_unsealed'")
            db.execute("ALTER TABLE credentials DROP COLUMN issued_at")
            db.execute("ALTER TABLE gateway_keys DROP COLUMN wrap_version")
            for column in ("type", "server", "database", "tls", "ca_pem", "tests_used"):
                db.execute(f"ALTER TABLE entry_links DROP COLUMN {column}")
            db.execute("DROP TABLE audit_rotations")  # its triggers go with it
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
            db.execute("DELETE FROM audit_events WHERE action = 'integrity.rows-sealed'")
            for seq, details in db.execute(
                "SELECT seq, details FROM audit_events WHERE action = 'gateway.initialized'"
            ).fetchall():
                older = {k: v for k, v in json.loads(details).items() if k != "rows_sealed"}
                db.execute(
                    "UPDATE audit_events SET details = ? WHERE seq = ?",
                    [json.dumps(older, sort_keys=True, separators=(",", ":")), seq],
                )
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


def _rewrap_gateway_keys_as_schema_3(db: sqlite3.Connection, master_key: MasterKey) -> None:
    (gateway_id,) = db.execute("SELECT value FROM settings WHERE key = 'gateway_id'").fetchone()
    rows = db.execute(
        "SELECT version, thumbprint, wrapped_private_key, wrap_version FROM gateway_keys"
    ).fetchall()
    for version, thumbprint, wrapped, wrap_version in rows:
        key = master_key.unwrap(
            wrapped, identity_wrap_context(gateway_id, version, thumbprint, wrap_version)
        )
        old = identity_wrap_context(gateway_id, version, thumbprint, 1)
        db.execute(
            "UPDATE gateway_keys SET wrapped_private_key = ? WHERE version = ?",
            [master_key.wrap(key, old, system_random), version],
        )


SCHEMA_3_VAULT = Path(__file__).resolve().parents[2] / "vectors" / "schema3-vault"


def copy_schema_3_vault(target: Path) -> Path:
    """A private copy of the real schema-3 vault in tests/vectors (see its README)."""
    target.mkdir(mode=0o700)
    for name in ("vault.db", "keystore.key"):
        copied = target / name
        copied.write_bytes((SCHEMA_3_VAULT / name).read_bytes())
        copied.chmod(0o600)
    return target


def schema_3_token() -> str:
    return (SCHEMA_3_VAULT / "etl-token.txt").read_text().strip()
