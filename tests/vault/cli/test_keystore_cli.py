"""`gwvault keystore show|migrate|trust-module` end to end, through the installed command."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import RECOVERY_KEY
from tests.softhsm_fixtures import MAIN_TOKEN, PlantedModule, SoftHsm
from tests.vault.cli.gwvault_process import GwvaultCli, private_file


def test_file_to_pkcs11_to_file_with_every_credential_opening(
    vault_templates: dict[str, Path], tmp_path: Path, softhsm: SoftHsm
) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    # The PIN from a 0600 file this time, not the environment.
    cli = GwvaultCli(tmp_path / "data", {"SOFTHSM2_CONF": str(softhsm.conf)})
    pin_file = private_file(tmp_path / "pin", softhsm.pin + "\n")
    for name in ("sales", "hr"):
        put = cli.put_login(name)
        assert put.code == 0, put.err
    # A key label of its own: copies of the template vault share one gateway id.
    label = f"cli-migration-{secrets.token_hex(4)}"
    to_hsm = cli("--pin-file", pin_file, "keystore", "migrate", "--to", "pkcs11",
                 "--key-label", label, "--pkcs11-module", softhsm.module,
                 "--token-label", MAIN_TOKEN)  # fmt: skip
    assert to_hsm.code == 0, to_hsm.err
    assert "bound to the pkcs11 keystore" in to_hsm.out and "2 of 2 credentials open" in to_hsm.out
    shown = cli("--pin-file", pin_file, "keystore", "show", "--json").json()
    assert (shown["keystore"], shown["token_label"], shown["key_created_by_gwvault"]) == (
        "pkcs11",
        MAIN_TOKEN,
        "yes",
    )
    assert not (tmp_path / "data" / "keystore.key").exists()
    assert cli("--pin-file", pin_file, "credentials", "verify").out.startswith("2 of 2")
    assert cli("credentials", "verify").code == 1  # no PIN anywhere: locked, one clear line

    back = cli("--pin-file", pin_file, "keystore", "migrate", "--to", "file")
    assert back.code == 0, back.err
    assert "destroyed the key" in back.out
    verify = cli("credentials", "verify")
    assert verify.code == 0 and "2 of 2 credentials open" in verify.out
    assert cli("keystore", "show", "--json").json()["keystore"] == "file"


def test_the_recovery_key_rebinds_a_vault_whose_key_file_is_lost(
    vault_templates: dict[str, Path], tmp_path: Path
) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    cli = GwvaultCli(tmp_path / "data")
    assert cli.put_login("sales").code == 0
    (tmp_path / "data" / "keystore.key").unlink()
    locked = cli("credentials", "verify")
    assert locked.code == 1 and "recovery key" in locked.err
    wrong = cli(
        "keystore", "migrate", "--to", "file", "--with-recovery-key", stdin="not the key at all"
    )
    assert wrong.code == 2 and "does not open" in wrong.err
    key_file = private_file(tmp_path / "rk", RECOVERY_KEY)
    rebound = cli("keystore", "migrate", "--to", "file", "--recovery-key-file", key_file)
    assert rebound.code == 0, rebound.err
    assert (
        "unlocked with the recovery key" in rebound.out and "1 of 1 credentials open" in rebound.out
    )


def test_no_command_loads_a_library_a_database_writer_names(
    vault_templates: dict[str, Path], tmp_path: Path, planted_module: PlantedModule
) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    cli = GwvaultCli(tmp_path / "data")
    assert cli.put_login("sales").code == 0
    planted = {"kind": "pkcs11", "module": str(planted_module.library), "token_label": "t",
               "key_label": "k", "created_key": "no"}  # fmt: skip
    with sqlite3.connect(tmp_path / "data" / "vault.db") as db:
        db.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('keystore', ?)",
            [json.dumps(planted)],
        )
    assert cli("keystore", "show", "--json").json()["keystore"] == "file"
    assert cli("credentials", "verify").out.startswith("1 of 1")
    assert cli("status", "--json").json()["keystore"] == "file"
    assert not planted_module.was_loaded()


def test_a_changed_module_is_refused_until_an_admin_trusts_it(
    tmp_path: Path, softhsm: SoftHsm, trusted_dir: Path, planted_module: PlantedModule
) -> None:
    module = trusted_dir / "libsofthsm2.so"
    original = Path(softhsm.module).read_bytes()
    module.write_bytes(original)
    cli = GwvaultCli(tmp_path / "data", softhsm.cli_env())
    key_file = private_file(tmp_path / "rk", RECOVERY_KEY)
    init = cli("init", "--name", "gw", "--recovery-key-file", key_file, "--keystore", "pkcs11",
               "--pkcs11-module", module, "--token-label", MAIN_TOKEN,
               "--key-label", f"trust-{secrets.token_hex(4)}")  # fmt: skip
    assert init.code == 0, init.err
    assert cli.put_login("sales").code == 0
    trusted_hash = hashlib.sha256(original).hexdigest()

    module.write_bytes(planted_module.library.read_bytes())  # other code at the same path
    refused = cli("credentials", "verify")
    assert not planted_module.was_loaded()
    assert refused.code == 1 and "gwvault keystore trust-module" in refused.err
    shown = cli("keystore", "show", "--json").json()  # describes it without loading it
    assert shown["module_check"].startswith("CHANGED") and shown["module_sha256"] == trusted_hash
    assert not planted_module.was_loaded()

    module.write_bytes(original + b"\0")  # an upgrade: still refused until accepted
    assert "trust-module" in cli("credentials", "verify").err
    module.parent.chmod(0o770)  # and never from a directory others may write
    loose = cli("keystore", "trust-module")
    assert loose.code == 1 and "writable by group or others" in loose.err
    module.parent.chmod(0o700)
    accepted = cli("keystore", "trust-module")
    assert accepted.code == 0 and "now trusts" in accepted.out, accepted.err
    assert cli("keystore", "trust-module").out.startswith("the vault already trusts")
    assert cli("credentials", "verify").out.startswith("1 of 1")
    entries = cli("audit", "list", "--action", "keystore.module-trusted", "--json").json()
    assert len(entries) == 1
    new_hash = cli("keystore", "show", "--json").json()["module_sha256"]
    assert new_hash != trusted_hash and new_hash in json.dumps(entries[0])
    assert trusted_hash in json.dumps(entries[0])


def test_trust_module_on_a_file_vault_or_without_a_module_is_bad_usage(
    vault_templates: dict[str, Path], tmp_path: Path
) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    cli = GwvaultCli(tmp_path / "data")
    before = (tmp_path / "data" / "keystore.json").read_bytes()
    on_a_file_vault = cli("keystore", "trust-module")
    assert on_a_file_vault.code == 2 and "keystore migrate --to pkcs11" in on_a_file_vault.err
    assert (tmp_path / "data" / "keystore.json").read_bytes() == before
    (tmp_path / "data" / "keystore.json").unlink()  # now unbound: the module must be named
    labels_only = cli("keystore", "trust-module", "--token-label", "t")
    assert labels_only.code == 2 and "need --pkcs11-module" in labels_only.err
    unnamed = cli("keystore", "trust-module")
    assert unnamed.code == 2 and "--pkcs11-module PATH" in unnamed.err
    assert not (tmp_path / "data" / "keystore.json").exists()  # nothing was bound
