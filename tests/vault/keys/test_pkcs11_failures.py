"""Bad PINs, missing tokens, wrong or untrusted modules, unfit keys and tokens: one clear
error, no change, and an untrusted module never loaded."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType

from agent_keys.errors import AccessDeniedError, InvalidInputError, KeyBackendError
from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from tests.softhsm_fixtures import MAIN_TOKEN, PlantedModule, SoftHsm, write_conf
from tests.vault.cli.gwvault_process import GWVAULT, private_file
from tests.vault.keys.pkcs11_vaults import init_pkcs11_vault
from vault.credentials import CredentialService
from vault.gateway import Gateway
from vault.keys.keystore_binding import KeystoreSpec, no_pin
from vault.keys.keystore_migration import migrate_keystore

# SoftHSM2 2.6's "-CKM_..." exclusion form is ignored, so list what stays offered.
NO_GCM = "slots.mechanisms = " + ",".join(
    f"CKM_AES_{name}" for name in ("KEY_GEN", "ECB", "CBC", "CBC_PAD", "KEY_WRAP", "KEY_WRAP_PAD")
)


def wrong_pin() -> Secret:
    return Secret.from_text("000000")


def test_a_wrong_pin_keeps_the_vault_locked_and_is_recorded(
    tmp_path: Path, softhsm: SoftHsm
) -> None:
    init_pkcs11_vault(tmp_path / "data", softhsm).close()
    # SoftHSM2 counts wrong PINs (CKF_USER_PIN_COUNT_LOW) but never locks the
    # user PIN; real HSMs lock after a few tries, so gwvault never retries a PIN.
    for _ in range(12):
        with Gateway.open(tmp_path / "data", make_context(), wrong_pin) as gateway:
            with pytest.raises(AccessDeniedError, match="refused the PIN") as refused:
                _ = gateway.master_key
            assert "000000" not in str(refused.value)
    with Gateway.open(tmp_path / "data", make_context(), softhsm.pin_source) as gateway:
        assert CredentialService(gateway).verify().failed == []
        failures = [e for e in gateway.store.audit_events() if e.action == "vault.unlock-failed"]
    assert len(failures) == 12


def test_no_pin_says_where_to_give_one(tmp_path: Path, softhsm: SoftHsm) -> None:
    init_pkcs11_vault(tmp_path / "data", softhsm).close()
    with (
        Gateway.open(tmp_path / "data", make_context(), no_pin) as gateway,
        pytest.raises(KeyBackendError, match="GWVAULT_PKCS11_PIN"),
    ):
        _ = gateway.master_key


def test_init_with_a_wrong_module_token_or_pin_creates_nothing(
    tmp_path: Path, softhsm: SoftHsm
) -> None:
    attempts = [
        (
            SoftHsmView(softhsm, module="/nonexistent/libsofthsm2.so"),
            KeyBackendError,
            "cannot load",
        ),
        (SoftHsmView(softhsm, token="no-such-token"), KeyBackendError, "no token labelled"),
        (SoftHsmView(softhsm, pin="999999"), AccessDeniedError, "refused the PIN"),
    ]
    for view, error, message in attempts:
        with pytest.raises(error, match=message):
            view.init(tmp_path / "data")
        assert list((tmp_path / "data").iterdir()) == []


def test_a_module_others_could_replace_is_refused_before_it_is_loaded(
    tmp_path: Path, softhsm: SoftHsm, planted_module: PlantedModule
) -> None:
    # The planted module lies under /tmp, where anyone may write.
    with pytest.raises(AccessDeniedError, match="writable by group or others"):
        SoftHsmView(softhsm, module=str(planted_module.library)).init(tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []
    with Gateway.open(data_dir := _file_vault(tmp_path), make_context()) as gateway:
        target = KeystoreSpec("pkcs11", str(planted_module.library), MAIN_TOKEN)
        with pytest.raises(AccessDeniedError, match="writable by group or others"):
            migrate_keystore(gateway, target, softhsm.pin_source)
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "keystore.json",
        "keystore.key",
        "vault.db",
    ]
    assert not planted_module.was_loaded()


def _file_vault(tmp_path: Path) -> Path:
    path = tmp_path / "file-vault"
    Gateway.initialize(
        path, "gw", "ec-p256", Secret.from_text(RECOVERY_KEY), make_context()
    ).close()
    return path


def test_an_extractable_key_is_not_adopted(tmp_path: Path, softhsm: SoftHsm) -> None:
    library = pkcs11.lib(softhsm.module)
    with library.get_token(token_label=MAIN_TOKEN).open(user_pin=softhsm.pin, rw=True) as session:
        session.generate_key(
            KeyType.AES, 256, label="leaky", store=True,
            template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
        )  # fmt: skip
    with pytest.raises(InvalidInputError, match="non-extractable"):
        init_pkcs11_vault(tmp_path / "data", softhsm, key_label="leaky")
    assert list((tmp_path / "data").iterdir()) == []


def test_a_token_without_aes_gcm_is_refused(tmp_path: Path, softhsm: SoftHsm) -> None:
    # SoftHSM2 can hide mechanisms (slots.mechanisms); the conf is read at
    # module load, so this runs in a fresh process, as an admin would.
    conf = tmp_path / "no-gcm.conf"
    write_conf(conf, softhsm.conf.parent / "tokens", NO_GCM)
    key_file = private_file(tmp_path / "rk", RECOVERY_KEY)
    done = subprocess.run(
        [str(GWVAULT), "--data-dir", str(tmp_path / "data"), "init", "--name", "gw",
         "--keystore", "pkcs11", "--pkcs11-module", softhsm.module, "--token-label", MAIN_TOKEN,
         "--recovery-key-file", str(key_file)],
        env={**os.environ, "SOFTHSM2_CONF": str(conf), "GWVAULT_PKCS11_PIN": softhsm.pin},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "does not offer AES-GCM" in done.stderr and "Traceback" not in done.stderr
    assert list((tmp_path / "data").iterdir()) == []


class SoftHsmView:
    """The session's SoftHSM with one thing changed: module path, token label or PIN."""

    def __init__(self, hsm: SoftHsm, module: str = "", token: str = "", pin: str = "") -> None:
        self.hsm, self.module, self.token, self.pin = hsm, module, token, pin

    def init(self, path: Path) -> None:
        spec = KeystoreSpec(
            "pkcs11",
            pkcs11_module=self.module or self.hsm.module,
            token_label=self.token or MAIN_TOKEN,
        )
        Gateway.initialize(
            path, "gw", "ec-p256", Secret.from_text(RECOVERY_KEY), make_context(),
            keystore=spec, pin=lambda: Secret.from_text(self.pin or self.hsm.pin),
        ).close()  # fmt: skip
