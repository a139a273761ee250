"""The admin's recovery key: verify it, change it, and open GMK versions with it.

Every GMK version is wrapped by the recovery KEK (Argon2id of the recovery
key), so the recovery key alone unlocks the vault on any machine.  A wrong key
costs a full Argon2id derivation per attempt and is recorded.
"""

from __future__ import annotations

from agent_keys.errors import IntegrityError, InvalidInputError
from agent_keys.keywrap import wrap_key
from agent_keys.master_key import MasterKey, master_key_context
from agent_keys.recovery_key import (
    RecoveryKdfParams,
    RecoveryWrap,
    check_passphrase_policy,
    derive_recovery_kek,
    unwrap_with_recovery_key,
)
from agent_keys.secret import Secret
from vault.gateway import Gateway

WRONG_RECOVERY_KEY = "that recovery key does not open this vault"


class RecoveryService:
    """``gwvault recovery verify|change-key`` on one opened vault."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def wraps(self) -> list[RecoveryWrap]:
        rows = self._gateway.store.rows("SELECT version FROM master_keys ORDER BY version", [])
        records = [self._gateway.store.master_key(int(row["version"])) for row in rows]
        return [record.recovery_wrap() for record in records if record is not None]

    def open(self, recovery_key: Secret) -> dict[int, MasterKey]:
        """All GMK versions through the recovery key; a wrong key is refused and recorded."""
        try:
            keys = unwrap_with_recovery_key(self._gateway.gateway_id, self.wraps(), recovery_key)
        except IntegrityError as e:
            self._gateway.audit.record_unkeyed(
                "recovery-key.failed", self._gateway.gateway_id, "refused"
            )
            raise InvalidInputError(WRONG_RECOVERY_KEY) from e
        # The audit entries that follow need the GMK; the keystore may be lost.
        self._gateway.adopt_master_keys(keys)
        return keys

    def verify(self, recovery_key: Secret) -> int:
        """Prove the key opens the vault, changing nothing but the audit trail."""
        keys = self.open(recovery_key)
        self._gateway.audit.record("recovery-key.verified", self._gateway.gateway_id)
        return len(keys)

    def change_key(self, old: Secret, new: Secret) -> None:
        """Rewrap every GMK version under a KEK from ``new``; the GMK itself is unchanged."""
        keys = self.open(old)
        check_passphrase_policy(new)
        gateway = self._gateway
        params = RecoveryKdfParams.fresh(gateway.context.random)
        kek = derive_recovery_kek(new, params)
        with gateway.store.write():
            for version, gmk in keys.items():
                context = master_key_context(gateway.gateway_id, version)
                gateway.store.execute(
                    "UPDATE master_keys SET recovery_wrapped = ?, recovery_salt = ?,"
                    " recovery_opslimit = ?, recovery_memlimit = ? WHERE version = ?",
                    [wrap_key(kek, gmk.key, context, gateway.context.random), params.salt,
                     params.opslimit, params.memlimit, version],
                )  # fmt: skip
            gateway.audit.record("recovery-key.changed", gateway.gateway_id, versions=len(keys))
