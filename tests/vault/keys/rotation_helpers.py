"""Building vaults with many credentials fast, and reading their key state."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent_keys.secret import Secret
from tests.conftest import make_context
from vault.credentials import CredentialService
from vault.data_dir import DataDir
from vault.format.envelope import CredentialBinding, seal_at_rest
from vault.gateway import Gateway, open_store
from vault.store.records import CredentialRecord


def insert_credentials(path: Path, count: int, prefix: str = "ds") -> None:
    """Store ``count`` MySQL logins in one transaction (not ``count`` CLI calls)."""
    with Gateway.open(path, make_context()) as gateway:
        gmk, now = gateway.master_key, gateway.context.now_iso()
        with gateway.store.write():
            for i in range(count):
                binding = CredentialBinding(
                    gateway_id=gateway.gateway_id,
                    credential_id=str(uuid.uuid4()),
                    name=f"{prefix}-{i:05d}",
                    version=1,
                    type="mysql",
                    server="db.internal",
                    database=None,
                    auth="basic",
                    username="u",
                )
                sealed = seal_at_rest(
                    gmk, binding, Secret.from_text(f"pw-{i}"), gateway.context.random
                )
                record = CredentialRecord(binding, sealed, now, now)
                mac = gateway.rows.sealed("credentials", record.sealed_row())
                gateway.store.save_credential(replace(record, mac=mac))


def verify_all(path: Path) -> tuple[int, list[str]]:
    """(how many credentials open, which do not), through the service."""
    with Gateway.open(path, make_context()) as gateway:
        report = CredentialService(gateway).verify()
    return len(report.opened), report.failed


def key_state(path: Path) -> dict[str, Any]:
    """Master key versions and states, and credentials per GMK version (no keys)."""
    store = open_store(DataDir(path))
    try:
        versions = {
            row["version"]: row["state"]
            for row in store.rows("SELECT version, state FROM master_keys", [])
        }
        by_version = {
            row["gmk_version"]: row["n"]
            for row in store.rows(
                "SELECT gmk_version, count(*) AS n FROM credentials GROUP BY gmk_version", []
            )
        }
    finally:
        store.close()
    return {"master_keys": versions, "credentials": by_version}


def ciphertexts(path: Path) -> dict[str, bytes]:
    store = open_store(DataDir(path))
    try:
        return {
            r["id"]: r["ciphertext"]
            for r in store.rows("SELECT id, ciphertext FROM credentials", [])
        }
    finally:
        store.close()
