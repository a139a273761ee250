"""The backup reminder (issue 19): due on a new vault, silenced by a recovery
bundle or a PKCS#12 export, due again after a key change, and never silenced
by an entry a database writer planted without the audit key (T-BK-1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_keys.secret import Secret
from tests.audit_forgery import append_forged_entry
from tests.conftest import make_context
from vault.cli.main import main
from vault.gateway import Gateway
from vault.keys.backup_state import backup_state
from vault.keys.certificates import CertificateService
from vault.keys.relocation import export_bundle


def test_a_new_vault_is_reminded_until_a_bundle_and_again_after_a_rotation(
    gateway: Gateway, recovery_key: Secret
) -> None:
    state = backup_state(gateway)
    assert state.needed and state.last_backup is None
    assert state.last_change is not None and state.last_change.action == "gateway.initialized"
    assert state.reminder is not None and "gwvault recovery export --out FILE" in state.reminder

    export_bundle(gateway, recovery_key)
    state = backup_state(gateway)
    assert not state.needed and state.reminder is None
    assert state.last_backup is not None and state.last_backup.action == "recovery.exported"

    CertificateService(gateway).rotate()
    state = backup_state(gateway)
    assert state.needed and state.last_change is not None
    assert state.last_change.action == "cert.rotated"
    assert state.reminder is not None and "since the last cert.rotated" in state.reminder


def test_a_pkcs12_export_is_a_backup(gateway: Gateway) -> None:
    CertificateService(gateway).export_pkcs12(
        Secret.from_text("pkcs12 export pass 1"), lambda _: None
    )
    state = backup_state(gateway)
    assert not state.needed and state.last_backup is not None
    assert state.last_backup.action == "cert.exported"


def test_a_forged_backup_entry_does_not_silence_the_reminder(data_dir: Path) -> None:
    """A database writer appends a well-chained ``recovery.exported`` entry
    without the audit key (no MAC, or a made-up one): no backup is known."""
    for mac in (None, b"\x5a" * 32):
        with Gateway.open(data_dir, make_context()) as gateway:
            gateway_id = gateway.gateway_id
        append_forged_entry(data_dir / "vault.db", gateway_id, "recovery.exported", mac)
        with Gateway.open(data_dir, make_context()) as gateway:
            state = backup_state(gateway)
        assert state.needed and state.last_backup is not None
        assert not state.last_backup.verified
        assert state.reminder is not None and "does not verify" in state.reminder


def test_status_shows_the_reminder_in_json_and_as_a_warning(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(data_dir), "status", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["backup"]["needed"] is True
    assert "warning: no recovery bundle or PKCS#12 export" in err
    assert main(["--data-dir", str(data_dir), "status"]) == 0
    out, _ = capsys.readouterr()
    assert "backup                      due (see the warning below)" in out
