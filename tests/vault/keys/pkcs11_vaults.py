"""Helpers for vaults bound to a SoftHSM2 token."""

from __future__ import annotations

from pathlib import Path

import pkcs11

from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
from vault.gateway import Gateway
from vault.keys.keystore_binding import KeystoreSpec


def init_pkcs11_vault(
    path: Path, hsm: SoftHsm, token: str = MAIN_TOKEN, key_label: str | None = None
) -> Gateway:
    spec = KeystoreSpec("pkcs11", pkcs11_module=hsm.module, token_label=token, key_label=key_label)
    return Gateway.initialize(
        path, "gw-hsm", "ec-p256", Secret.from_text(RECOVERY_KEY), make_context(),
        keystore=spec, pin=hsm.pin_source,
    )  # fmt: skip


def destroy_token_key(hsm: SoftHsm, token: str, key_label: str) -> None:
    """What an HSM admin's mistake (or a wiped HSM) does to the vault's KEK."""
    library = pkcs11.lib(hsm.module)
    with library.get_token(token_label=token).open(user_pin=hsm.pin, rw=True) as session:
        session.get_key(label=key_label).destroy()
