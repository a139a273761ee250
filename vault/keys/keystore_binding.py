"""Which keystore a vault is bound to: chosen at init, kept in the binding file, reopened.

The binding file (``keystore.json`` in the data dir, ``vault.keys.binding_file``)
names the key file, or the PKCS#11 module (with the SHA-256 it was trusted
at), token and key labels; never a key or a PIN.  The vault database is never
asked which library to load (threat T-HSM-8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from agent_keys.errors import InvalidInputError, KeyBackendError
from agent_keys.file_keystore import FileKeystore
from agent_keys.keystore import Keystore, PinSource
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret
from vault.data_dir import KEY_FILE, DataDir
from vault.format.keystore_binding import check_key_label, check_module_path, check_token_label
from vault.keys.binding_file import (
    LEGACY_SETTING,
    adopt_legacy_file_binding,
    committed_binding,
    digest_setting,
)
from vault.store.vault_store import VaultStore

KeystoreKind = Literal["file", "pkcs11"]
KEYSTORE_KINDS: tuple[KeystoreKind, ...] = ("file", "pkcs11")
PIN_ENV = "GWVAULT_PKCS11_PIN"
TRUST_MODULE_COMMAND = (
    "gwvault keystore trust-module --pkcs11-module PATH --token-label L [--key-label K]"
)


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
        if self.pkcs11_module is not None:
            check_module_path(self.pkcs11_module)
        if self.token_label is not None:
            check_token_label(self.token_label)
        if self.key_label is not None:
            check_key_label(self.key_label)


def default_key_label(gateway_id: str) -> str:
    return f"gwvault-{gateway_id}"


def create_keystore(
    spec: KeystoreSpec,
    data_dir: DataDir,
    gateway_id: str,
    random: RandomSource,
    pin: PinSource,
    *,
    key_file: str = KEY_FILE,
) -> Keystore:
    """Make a new keystore for the vault of ``gateway_id`` (a PKCS#11 module is
    trusted at its bytes of now, after its location checks)."""
    if spec.kind == "file":
        return FileKeystore.create(data_dir.path / key_file, random)
    from agent_keys.pkcs11_keystore import Pkcs11Keystore

    assert spec.pkcs11_module and spec.token_label  # noqa: S101 - checked by KeystoreSpec
    return Pkcs11Keystore.create_or_adopt(
        spec.pkcs11_module,
        spec.token_label,
        spec.key_label or default_key_label(gateway_id),
        pin,
        random,
    )


def open_keystore(
    settings: Mapping[str, str], data_dir: DataDir, random: RandomSource, pin: PinSource
) -> Keystore:
    """The keystore a checked binding (``parse_binding``) names; loads nothing."""
    if settings["kind"] == "file":
        return FileKeystore(data_dir.path / settings["key_file"], random)
    from agent_keys.pkcs11_keystore import Pkcs11Keystore

    return Pkcs11Keystore(
        settings["module"],
        settings["token_label"],
        settings["key_label"],
        pin,
        random,
        module_sha256=settings["module_sha256"],
        created_key=settings["created_key"] == "yes",
    )


def open_bound_keystore(
    data_dir: DataDir, store: VaultStore, random: RandomSource, pin: PinSource
) -> Keystore:
    """The keystore the vault's binding file names.

    A file-keystore vault made before the binding file gets one now; a vault
    without a binding otherwise opens with an ``UnboundKeystore`` that unlocks
    nothing and says what to do.  Raises ``AccessDeniedError`` or
    ``StorageError`` for a binding file that is not private or well formed.
    """
    settings = committed_binding(data_dir, store)
    if settings is None and store.setting(digest_setting(store)) is None:
        settings = adopt_legacy_file_binding(data_dir, store)
    if settings is not None:
        return open_keystore(settings, data_dir, random, pin)
    if store.setting(LEGACY_SETTING) is not None:
        return UnboundKeystore(
            "pkcs11",
            "this vault was made before gwvault kept its PKCS#11 binding in"
            f" {data_dir.binding_path}, and the module the database names is never loaded;"
            f" name the module yourself: {TRUST_MODULE_COMMAND}",
        )
    return UnboundKeystore(
        "unbound",
        f"the keystore binding {data_dir.binding_path} is missing; restore it from a backup,"
        f" rebind a PKCS#11 vault with: {TRUST_MODULE_COMMAND}, or rebind with the recovery"
        " key: gwvault keystore migrate --to file --recovery-key-file F",
    )


class UnboundKeystore:
    """The keystore of a vault without a binding file: it unlocks nothing and
    says what to do.  The vault still opens, so the recovery key can rebind it
    (``keystore migrate``) or an admin can name its module (``trust-module``)."""

    def __init__(self, kind: str, advice: str) -> None:
        self._kind = kind
        self.advice = advice

    @property
    def kind(self) -> str:
        return self._kind

    def wrap_master_key(self, master_key: Secret, context: bytes) -> bytes:
        raise KeyBackendError(self.advice)

    def unwrap_master_key(self, wrapped: bytes, context: bytes) -> Secret:
        raise KeyBackendError(self.advice)

    def settings(self) -> dict[str, str]:
        return {"kind": self._kind}

    def describe(self) -> dict[str, str]:
        return {"binding": "missing", "what_to_do": self.advice}

    def retire(self) -> str:
        return "the vault had no keystore binding to retire"
