"""Which keystore a vault is bound to: chosen at init, stored as settings, reopened.

The vault database keeps only non-secret settings that find the keystore again
(``{"kind": "file", "key_file": "keystore.key"}`` or the PKCS#11 module, token
and key labels); never a key or a PIN.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from agent_keys.errors import InvalidInputError, KeyBackendError, StorageError
from agent_keys.file_keystore import FileKeystore
from agent_keys.keystore import Keystore, PinSource
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret
from vault.data_dir import KEY_FILE, DataDir
from vault.format.strict_json import parse_json_object

KeystoreKind = Literal["file", "pkcs11"]
KEYSTORE_KINDS: tuple[KeystoreKind, ...] = ("file", "pkcs11")
PIN_ENV = "GWVAULT_PKCS11_PIN"


def no_pin() -> Secret:
    """The PIN source of a caller that has none to offer."""
    raise KeyBackendError(
        f"the PKCS#11 token needs its user PIN: set {PIN_ENV}, pass --pin-file F,"
        " or run the command on a terminal"
    )


@dataclass(frozen=True)
class KeystoreSpec:
    """A keystore an admin asks for (``init --keystore``, ``keystore migrate --to``)."""

    kind: KeystoreKind
    pkcs11_module: str | None = None
    token_label: str | None = None
    key_label: str | None = None

    def __post_init__(self) -> None:
        pkcs11_flags = (self.pkcs11_module, self.token_label, self.key_label)
        if self.kind == "file" and any(pkcs11_flags):
            raise InvalidInputError(
                "--pkcs11-module, --token-label and --key-label need --keystore pkcs11"
            )
        if self.kind == "pkcs11" and not (self.pkcs11_module and self.token_label):
            raise InvalidInputError(
                "--keystore pkcs11 needs --pkcs11-module PATH and --token-label LABEL"
            )
        if self.pkcs11_module and not os.path.isabs(self.pkcs11_module):
            # A relative module path would load whatever library sits in the
            # current directory of a later command.
            raise InvalidInputError("--pkcs11-module must be an absolute path")


def create_keystore(
    spec: KeystoreSpec,
    data_dir: DataDir,
    gateway_id: str,
    random: RandomSource,
    pin: PinSource,
    *,
    key_file: str = KEY_FILE,
) -> Keystore:
    """Make a new keystore binding for the vault of ``gateway_id``."""
    if spec.kind == "file":
        return FileKeystore.create(data_dir.path / key_file, random)
    from agent_keys.pkcs11_keystore import Pkcs11Keystore

    assert spec.pkcs11_module and spec.token_label  # noqa: S101 - checked by KeystoreSpec
    return Pkcs11Keystore.create_or_adopt(
        spec.pkcs11_module,
        spec.token_label,
        spec.key_label or f"gwvault-{gateway_id}",
        pin,
        random,
    )


def open_keystore(
    raw: str | None, data_dir: DataDir, random: RandomSource, pin: PinSource
) -> Keystore:
    """The keystore named by a vault's stored settings."""
    try:
        settings = parse_json_object(raw or "")
    except ValueError as e:
        raise StorageError("the vault's keystore setting is damaged") from e
    if not isinstance(settings, dict) or not all(isinstance(v, str) for v in settings.values()):
        raise StorageError("the vault's keystore setting is damaged")
    kind = settings.get("kind")
    if kind == "file":
        name = settings.get("key_file", KEY_FILE)
        if "/" in name or name.startswith("."):
            raise StorageError("the vault's key file setting points outside its data dir")
        return FileKeystore(data_dir.path / name, random)
    if kind == "pkcs11":
        from agent_keys.pkcs11_keystore import Pkcs11Keystore

        return Pkcs11Keystore(
            settings["module"],
            settings["token_label"],
            settings["key_label"],
            pin,
            random,
            created_key=settings.get("created_key") == "yes",
        )
    raise StorageError(f"the vault names a keystore this gwvault does not support: {kind!r}")
