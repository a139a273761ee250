"""`gwvault keystore show|migrate` end to end, through the installed command."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from tests.conftest import RECOVERY_KEY
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
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
