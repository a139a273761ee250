"""``gwvault keystore trust-module``: accept a PKCS#11 module's bytes as they are now.

A vault loads its module only if the file still has the SHA-256 recorded in
its binding (threat T-HSM-8), so an HSM client upgrade locks the vault until an
admin on the machine accepts the new module.  The same command binds a vault
made before the binding file existed: its admin names the module, token and
key, since the database's old value is never loaded.

The new binding is accepted only if it opens every master key the vault holds
(the token key is what proves it is the vault's keystore), and it is recorded
(``keystore.module-trusted``) in the transaction that commits it.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_keys.errors import IntegrityError, InvalidInputError
from agent_keys.keystore import Keystore, PinSource
from agent_keys.master_key import MasterKey, master_key_context
from vault.gateway import Gateway
from vault.keys.binding_file import rebind
from vault.keys.keystore_binding import TRUST_MODULE_COMMAND, KeystoreSpec, default_key_label
from vault.keys.keystore_migration import held_versions


@dataclass(frozen=True)
class TrustResult:
    """What ``trust-module`` did, for the admin to read."""

    module: str
    module_sha256: str
    previous_sha256: str | None
    changed: bool


def trust_module(
    gateway: Gateway,
    pin: PinSource,
    module: str | None = None,
    token_label: str | None = None,
    key_label: str | None = None,
) -> TrustResult:
    """Rebind the vault to its PKCS#11 module at the module's current bytes.

    Without ``module`` the bound one is re-hashed; with it (and the token and
    key labels, defaulting to the bound ones) the vault is bound to that one.
    Raises ``InvalidInputError`` when the vault is not a PKCS#11 vault, when
    flags are missing, or when the module, token and key do not open the
    vault's master keys; the location errors of ``inspect_module``; then
    nothing changed.
    """
    spec = _requested(gateway, module, token_label, key_label)
    assert spec.pkcs11_module and spec.token_label and spec.key_label  # noqa: S101 - _requested
    candidate = _candidate(gateway, pin, spec.pkcs11_module, spec.token_label, spec.key_label)
    bound, new = gateway.keystore.settings(), candidate.settings()
    result = TrustResult(
        spec.pkcs11_module, new["module_sha256"], bound.get("module_sha256"), new != bound
    )
    if not result.changed:
        return result
    gateway.adopt_master_keys(_open_every_master_key(gateway, candidate))

    def record() -> None:
        gateway.audit.record(
            "keystore.module-trusted",
            gateway.gateway_id,
            module=result.module,
            module_sha256=result.module_sha256,
            previous_sha256=result.previous_sha256,
            token_label=spec.token_label,
            key_label=spec.key_label,
        )

    rebind(gateway.data_dir, gateway.store, candidate, record)
    gateway.keystore = candidate
    return result


def _requested(
    gateway: Gateway, module: str | None, token_label: str | None, key_label: str | None
) -> KeystoreSpec:
    """The binding asked for: the flags, else what is bound now."""
    bound = gateway.keystore.settings()
    if bound["kind"] == "file":
        raise InvalidInputError(
            "this vault uses the file keystore; to move it into an HSM run:"
            " gwvault keystore migrate --to pkcs11 --pkcs11-module PATH --token-label L"
        )
    if module is None and (token_label or key_label):
        raise InvalidInputError("--token-label and --key-label need --pkcs11-module")
    module = module or bound.get("module")
    token_label = token_label or bound.get("token_label")
    if not (module and token_label):
        raise InvalidInputError(f"name the module: {TRUST_MODULE_COMMAND}")
    key_label = key_label or bound.get("key_label") or default_key_label(gateway.gateway_id)
    return KeystoreSpec("pkcs11", module, token_label, key_label)  # the checks of init's flags


def _candidate(
    gateway: Gateway, pin: PinSource, module: str, token_label: str, key_label: str
) -> Keystore:
    from agent_keys.pkcs11_keystore import Pkcs11Keystore

    bound = gateway.keystore.settings()
    # Whether gwvault made the token key (and may destroy it when the vault
    # moves away) is known only from a binding for that same key; for any
    # other the key is treated as adopted and never destroyed.
    same_key = (bound.get("token_label"), bound.get("key_label")) == (token_label, key_label)
    return Pkcs11Keystore.trusting_module_now(
        module,
        token_label,
        key_label,
        pin,
        gateway.context.random,
        created_key=same_key and bound.get("created_key") == "yes",
    )


def _open_every_master_key(gateway: Gateway, keystore: Keystore) -> dict[int, MasterKey]:
    """Every GMK version through ``keystore`` (this loads the trusted module)."""
    keys: dict[int, MasterKey] = {}
    for version in held_versions(gateway):
        record = gateway.store.master_key(version)
        if record is None:
            continue  # retired meanwhile by a rotation finishing
        context = master_key_context(gateway.gateway_id, record.version)
        try:
            key = (
                keystore.unwrap_master_key(record.keystore_wrapped, context)
                if gateway.member_keys is None
                else gateway.member_keys.unwrap(record.version, keystore)
            )
            keys[record.version] = MasterKey(record.version, key)
        except IntegrityError as e:
            raise InvalidInputError(
                f"the key {keystore.settings()['key_label']!r} on token"
                f" {keystore.settings()['token_label']!r} does not open this vault's master"
                " key; nothing changed"
            ) from e
    return keys
