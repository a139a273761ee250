"""The gateway vault: created by ``initialize``, unlocked by ``open``.

Holds the key hierarchy of design.md together: the keystore unwraps the GMK,
the GMK unwraps the gateway private keys (current and legacy) and every data
key.  Unwrapped keys live only in this object's memory, for one process.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from agent_keys.errors import (
    AccessDeniedError,
    IntegrityError,
    InvalidInputError,
    KeyBackendError,
    StorageError,
)
from agent_keys.gateway_identity import (
    GatewayCertificate,
    GatewayPrivateKey,
    KeyType,
    generate_gateway_identity,
    new_gateway_id,
    same_public_key,
)
from agent_keys.keystore import Keystore, PinSource
from agent_keys.keywrap import wrap_key
from agent_keys.master_key import MasterKey, master_key_context
from agent_keys.recovery_key import (
    RecoveryKdfParams,
    check_passphrase_policy,
    derive_recovery_kek,
    unwrap_with_recovery_key,
)
from agent_keys.secret import Secret
from vault.access.row_seal import ROWS_SEALED_AT_INIT, RowSeal, TamperedRowError
from vault.audit.sinks.forwarding import send_to_block_sinks
from vault.audit.sinks.standing import sink_lags
from vault.audit.trail import AuditTrail
from vault.cluster.enrolment import enroll_member, new_member_id
from vault.cluster.member_keys import MemberKeys
from vault.cluster.standing import check_member_epoch, check_member_standing
from vault.context import RequestContext
from vault.data_dir import DataDir
from vault.gateway_facts import GatewayFacts
from vault.keys.binding_file import write_new_binding
from vault.keys.keystore_binding import (
    KeystoreSpec,
    create_keystore,
    no_pin,
    open_bound_keystore,
)
from vault.keys.tls import generate_for, store_tls_identity
from vault.names import check_gateway_name
from vault.store.locator import (
    ClusterMembership,
    PostgresLocation,
    read_membership,
    with_password_file,
    write_membership,
)
from vault.store.records import GatewayKeyRecord, MasterKeyRecord, identity_wrap_context
from vault.store.vault_store import VaultStore

FIRST_VERSION = 1
FIRST_EPOCH = 1
FILE_KEYSTORE = KeystoreSpec("file")
T = TypeVar("T")


class Gateway:
    """An opened gateway vault, for one request context.

    ``facts``, given by a process that keeps the vault open (a server thread,
    the agent), keeps checked facts across requests (``vault.gateway_facts``).
    """

    def __init__(
        self,
        data_dir: DataDir,
        store: VaultStore,
        keystore: Keystore,
        context: RequestContext,
        facts: GatewayFacts | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.keystore = keystore
        self.context = context
        self.facts = facts
        self._unlocked: MasterKey | None = None  # a server's GMK, while it is the current one
        self.audit = AuditTrail(store, context, self)
        self.rows = RowSeal(self)
        self._older_master_keys: dict[int, MasterKey] = {}
        # A cluster member reaches the GMK through its member key (vault.cluster).
        self.member_keys = MemberKeys(self, store.member_id) if store.member_id else None
        # Each commit that appended entries first hands them to the block sinks.
        store.forward_audit_with(functools.partial(send_to_block_sinks, self))

    @property
    def member_id(self) -> str | None:
        """This cluster member's id; None on a single machine."""
        return self.store.member_id

    def membership(self) -> ClusterMembership | None:
        """What this member's data dir says of its cluster (None on a single machine)."""
        return read_membership(self.data_dir.path) if self.member_id else None

    def check_standing(self) -> None:
        """Refuse (``MemberStoppedError``) to go on as a removed, disabled or
        stale cluster member; nothing on a single machine.  Checked again
        whenever the vault's facts change (a member row is one of them)."""
        if self.member_id is not None:
            self.cached_fact("member_standing", lambda: check_member_standing(self))

    @classmethod
    def initialize(
        cls,
        path: Path,
        name: str,
        key_type: KeyType,
        recovery_key: Secret,
        context: RequestContext,
        *,
        keystore: KeystoreSpec = FILE_KEYSTORE,
        pin: PinSource = no_pin,
        shared_store: PostgresLocation | None = None,
        member_name: str | None = None,
        store_password: Secret | None = None,
    ) -> Gateway:
        """Create a new vault in ``path``; refuses to overwrite one.

        With ``shared_store`` the vault's database is that PostgreSQL database
        (which must hold no vault yet) and this machine is the cluster's first
        member (``member_name``, the host name by default).

        Checks every input before writing anything; on any later failure the
        files it created are removed, so no half-made vault is left behind.
        """
        check_gateway_name(name)
        check_passphrase_policy(recovery_key)
        data_dir = DataDir.create(path)
        gateway: Gateway | None = None
        try:
            if shared_store is not None:  # the data dir's libpq password file, if one is given
                shared_store = with_password_file(shared_store, data_dir.path, store_password)
            gateway = cls._create(
                data_dir, name, key_type, recovery_key, context, spec=keystore, pin=pin,
                shared_store=shared_store, member_name=member_name,
            )  # fmt: skip
            data_dir.finish_creation()
        except BaseException:
            if gateway is not None:
                gateway.close()
            data_dir.remove_new_files()
            raise
        return gateway

    @classmethod
    def _create(
        cls,
        data_dir: DataDir,
        name: str,
        key_type: KeyType,
        recovery_key: Secret,
        context: RequestContext,
        *,
        spec: KeystoreSpec,
        pin: PinSource,
        shared_store: PostgresLocation | None = None,
        member_name: str | None = None,
    ) -> Gateway:
        random = context.random
        gateway_id = new_gateway_id(random)
        identity = generate_gateway_identity(name, gateway_id, key_type, context.clock(), random)
        params = RecoveryKdfParams.fresh(random)
        recovery_kek = derive_recovery_kek(recovery_key, params)
        gmk = MasterKey.generate(FIRST_VERSION, random)
        keystore = create_keystore(spec, data_dir, gateway_id, random, pin)
        founding = (
            None
            if shared_store is None
            else ClusterMembership(shared_store, new_member_id(random), FIRST_EPOCH)
        )
        try:
            if founding is None:
                store = VaultStore.create(data_dir.db_path)
            else:
                store = VaultStore.create_shared(founding.store)
                store.member_id = founding.member_id
                write_membership(data_dir.path, founding)
            gateway = cls(data_dir, store, keystore, context)
            gateway.__dict__["master_key"] = gmk  # fills the cached_property
            gmk_context = master_key_context(gateway_id, gmk.version)
            with store.write():
                for key, value in {
                    "gateway_id": gateway_id,
                    "name": name,
                    "epoch": "1",
                    "created_at": context.now_iso(),
                }.items():
                    store.set_setting(key, value)
                write_new_binding(data_dir, store, keystore)
                store.add_master_key(
                    MasterKeyRecord(
                        version=gmk.version,
                        # A cluster's members wrap it each (member_wraps) instead.
                        keystore_wrapped=(
                            keystore.wrap_master_key(gmk.key, gmk_context)
                            if founding is None
                            else b""
                        ),
                        recovery_wrapped=wrap_key(recovery_kek, gmk.key, gmk_context, random),
                        recovery_salt=params.salt,
                        recovery_opslimit=params.opslimit,
                        recovery_memlimit=params.memlimit,
                        state="current",
                        created_at=context.now_iso(),
                    )
                )
                store.add_gateway_key(gateway._wrapped_identity(gmk, *identity))
                if founding is not None:
                    enroll_member(gateway, gmk, member_name, founding.epoch)
                gateway.rows.seal_all_unsealed()  # the first rows; none came before them
                store_tls_identity(gateway, gmk, generate_for(gateway, gmk), "generated")
                gateway.audit.record(
                    "gateway.initialized",
                    gateway_id,
                    "ok",
                    name=name,
                    key_type=key_type,
                    keystore=keystore.kind,
                    module_sha256=keystore.settings().get("module_sha256"),
                    cert_thumbprint=identity[1].thumbprint,
                    store=store.engine_kind,
                    **{ROWS_SEALED_AT_INIT: True},
                )
        except BaseException:
            keystore.retire()  # a key made for this vault must not outlive a failed init
            raise
        return gateway

    @classmethod
    def open(
        cls,
        path: Path,
        context: RequestContext,
        pin: PinSource = no_pin,
        unlocked: MasterKey | None = None,
        facts: GatewayFacts | None = None,
    ) -> Gateway:
        """Open an existing vault (the keys are unwrapped on first use).

        The keystore is the one the data dir's binding file names
        (``vault.keys.binding_file``); the database never names one.

        ``pin`` is asked for a PKCS#11 token's PIN only when the GMK is needed.
        ``unlocked`` is a GMK a long-running server unwrapped once at start, so
        the keystore (and an HSM) stays off the per-request path.
        """
        data_dir = DataDir.open(path)
        store = open_store(data_dir)
        try:
            keystore = open_bound_keystore(data_dir, store, context.random, pin)
        except BaseException:
            store.close()
            raise
        gateway = cls(data_dir, store, keystore, context, facts)
        if unlocked is not None and facts is None:
            gateway.__dict__["master_key"] = unlocked  # fills the cached_property
        else:
            # Kept open across requests: a rotation by another process makes
            # another GMK current, unwrapped then once (per process) instead.
            gateway._unlocked = unlocked
        return gateway

    @classmethod
    def with_master_keys(
        cls,
        data_dir: DataDir,
        store: VaultStore,
        keystore: Keystore,
        context: RequestContext,
        master_keys: dict[int, MasterKey],
    ) -> Gateway:
        """A gateway whose GMK versions are already in hand (a restore, which
        got them from the recovery key before the keystore wrapped them)."""
        gateway = cls(data_dir, store, keystore, context)
        gateway.adopt_master_keys(master_keys)
        return gateway

    def acting_as(self, context: RequestContext) -> Gateway:
        """This opened vault for another caller (the web app learns who calls
        only after opening it): the same database connection and unwrapped
        keys, a new context, so audit entries name the caller."""
        other = Gateway(self.data_dir, self.store, self.keystore, context, self.facts)
        for name in ("gateway_id", "master_key", "private_keys"):  # the cached_properties
            if name in self.__dict__:
                other.__dict__[name] = self.__dict__[name]
        other._older_master_keys.update(self._older_master_keys)
        other._unlocked = self._unlocked
        return other

    def adopt_master_keys(self, master_keys: dict[int, MasterKey]) -> None:
        """Use GMK versions unwrapped another way (the recovery key), so this
        gateway needs no keystore for them: its keystore may be the lost one."""
        current = self._current_master_key_record().version
        if current in master_keys:
            self.__dict__["master_key"] = master_keys[current]
        self._older_master_keys.update(master_keys)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- identity ---------------------------------------------------------------

    @functools.cached_property
    def gateway_id(self) -> str:
        return self._required_setting("gateway_id")

    @property
    def name(self) -> str:
        return self._required_setting("name")

    @property
    def epoch(self) -> int:
        return int(self._required_setting("epoch"))

    def certificate(self) -> GatewayCertificate:
        """The current gateway certificate (public), as sealers are handed it.

        Its row is sealed (``TamperedRowError`` if a database writer swapped it)
        and the certificate must be the one its row names.
        """
        return self.cached_fact(
            "certificate", lambda: self._checked_certificate(self.store.gateway_keys()[0])
        )

    def cached_fact(self, name: str, load: Callable[[], T]) -> T:
        """``load()``, or the value it gave while the vault is unchanged, for a
        process that keeps the vault open (``vault.gateway_facts``)."""
        return load() if self.facts is None else self.facts.get(self.store, name, load)

    def _checked_certificate(self, record: GatewayKeyRecord) -> GatewayCertificate:
        rows = self.store.rows(
            f"SELECT {self.rows.columns('gateway_keys')} FROM gateway_keys WHERE version = ?",  # noqa: S608 - fixed columns
            [record.version],
        )
        if rows:
            self.rows.check("gateway_keys", rows[0])
        certificate = GatewayCertificate.from_pem(record.cert_pem.encode("ascii"))
        if not rows or certificate.thumbprint != record.thumbprint:
            raise TamperedRowError("gateway_keys", record.version)
        return certificate

    # -- keys -------------------------------------------------------------------

    @functools.cached_property
    def master_key(self) -> MasterKey:
        """The current GMK, unwrapped through the keystore (a member's: through
        its member key, and only while the member is in good standing)."""
        key = self.cached_fact("master_key", self._unwrapped_master_key)
        if self.member_id is not None:
            self.__dict__["master_key"] = key  # the standing check's row seal uses it
            self.check_standing()
        return key

    def _unwrapped_master_key(self) -> MasterKey:
        record = self._current_master_key_record()
        if self._unlocked is not None and self._unlocked.version == record.version:
            return self._unlocked
        try:
            key = self._keystore_unwrap(record)
        except IntegrityError as e:
            self._record_unlock_failure("keystore", "wrong-key")
            raise KeyBackendError(
                "the keystore key does not unlock this vault (a key file from another"
                " vault?); rebind it with the recovery key: gwvault keystore migrate"
                " --to file --recovery-key-file F"
            ) from e
        except (AccessDeniedError, KeyBackendError) as e:
            self._record_unlock_failure("keystore", type(e).__name__)
            raise
        return MasterKey(record.version, key)

    def master_key_for(self, version: int) -> MasterKey:
        """The GMK of ``version``: the current one, or an older one a rotation is
        still moving data keys away from (unwrapped through the keystore)."""
        if version == self.master_key.version:
            return self.master_key
        if version not in self._older_master_keys:
            # Kept per process too: a server unlocked before a rotation would
            # otherwise ask the keystore (an HSM) on every request after it.
            self._older_master_keys[version] = self.cached_fact(
                f"master_key_v{version}", lambda: self._unwrapped_master_key_of(version)
            )
        return self._older_master_keys[version]

    def _unwrapped_master_key_of(self, version: int) -> MasterKey:
        if self._unlocked is not None and self._unlocked.version == version:
            return self._unlocked  # a server's, now retiring
        record = self.store.master_key(version)
        if record is None:
            raise IntegrityError(f"no master key version {version} is held")
        return MasterKey(version, self._keystore_unwrap(record))

    def _keystore_unwrap(self, record: MasterKeyRecord) -> Secret:
        """GMK ``record`` through this machine's keystore: directly on a single
        machine, through the member key in a cluster."""
        if self.member_keys is not None:
            check_member_epoch(self)  # a stale member is told so before any unwrap
            return self.member_keys.unwrap(record.version)
        context = master_key_context(self.gateway_id, record.version)
        return self.keystore.unwrap_master_key(record.keystore_wrapped, context)

    def wrap_for_keystore(self, gmk: MasterKey) -> bytes:
        """The keystore wrap a new GMK version's row carries: this machine's; in
        a cluster none (every member's is written by ``wrap_for_members``)."""
        if self.member_keys is not None:
            return b""
        return self.keystore.wrap_master_key(
            gmk.key, master_key_context(self.gateway_id, gmk.version)
        )

    def wrap_for_members(self, gmk: MasterKey) -> int:
        """In a cluster, wrap a new GMK version to every member (inside the
        caller's write); on a single machine nothing."""
        return self.member_keys.wrap_for_members(gmk) if self.member_keys is not None else 0

    def master_key_from_recovery_key(self, recovery_key: Secret) -> MasterKey:
        """The current GMK through the recovery wrap, for when the keystore is gone.

        Raises ``InvalidInputError`` (recorded) when the recovery key is wrong.
        """
        record = self._current_master_key_record()
        try:
            keys = unwrap_with_recovery_key(self.gateway_id, [record.recovery_wrap()], recovery_key)
            return keys[record.version]
        except IntegrityError as e:
            self._record_unlock_failure("recovery-key", "wrong-key")
            raise InvalidInputError("that recovery key does not open this vault") from e

    def _current_master_key_record(self) -> MasterKeyRecord:
        record = self.store.current_master_key()
        if record is None:
            raise StorageError("the vault has no current master key; restore from a bundle")
        return record

    def _record_unlock_failure(self, via: str, reason: str) -> None:
        # Repeated failures are what an auditor looks for (PIN guessing, a
        # stolen key file).  If even this entry cannot be written the unlock
        # has failed anyway, so the original error is the one to report.
        with contextlib.suppress(StorageError):
            self.audit.record_unkeyed(
                "vault.unlock-failed", self.gateway_id, "failed", via=via, reason=reason
            )

    def checkpoint_signer(self) -> tuple[GatewayPrivateKey, GatewayCertificate]:
        """The current key pair, which signs audit checkpoints."""
        certificate = self.certificate()
        return self.private_keys[certificate.thumbprint], certificate

    @functools.cached_property
    def private_keys(self) -> dict[str, GatewayPrivateKey]:
        """Every held gateway private key by certificate thumbprint (the JWE ``kid``)."""
        return self.cached_fact("private_keys", self._checked_private_keys)

    def _checked_private_keys(self) -> dict[str, GatewayPrivateKey]:
        keys: dict[str, GatewayPrivateKey] = {}
        for record in self.store.gateway_keys():
            certificate = self._checked_certificate(record)
            der = self.master_key_for(record.gmk_version).unwrap(
                record.wrapped_private_key, record.wrap_context(self.gateway_id)
            )
            key = GatewayPrivateKey.from_pkcs8(der, _key_type(record.key_type))
            # The certificate is the key's own, or sealers were handed someone else's.
            if not same_public_key(key.public_key(), certificate.public_key()):
                raise TamperedRowError("gateway_keys", record.version)
            keys[record.thumbprint] = key
        return keys

    def _wrapped_identity(
        self,
        gmk: MasterKey,
        private_key: GatewayPrivateKey,
        certificate: GatewayCertificate,
        version: int = FIRST_VERSION,
    ) -> GatewayKeyRecord:
        """Key pair ``version`` as the new current row: the key wrapped under ``gmk``."""
        return GatewayKeyRecord(
            version=version,
            key_type=certificate.key_type,
            cert_pem=certificate.pem.decode("ascii"),
            thumbprint=certificate.thumbprint,
            wrapped_private_key=gmk.wrap(
                private_key.to_pkcs8(),
                identity_wrap_context(self.gateway_id, version, certificate.thumbprint, 2),
                self.context.random,
            ),
            gmk_version=gmk.version,
            state="current",
            created_at=self.context.now_iso(),
        )

    # -- status -----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``gwvault status`` shows; reads no secret and unlocks nothing.

        The certificate's seal is checked only when the vault is already
        unlocked (a server, a command that used the keys): ``cert_checked``
        says which, and ``gwvault cert show`` always checks.
        """
        checked = "master_key" in self.__dict__ or self._unlocked is not None
        record = self.store.gateway_keys()[0]
        certificate = (
            self._checked_certificate(record)
            if checked
            else GatewayCertificate.from_pem(record.cert_pem.encode("ascii"))
        )
        gmk = self.store.current_master_key()
        # Kept by the database with each change (schema 5): no scan per request.
        counts = self.store.credential_counts()
        return {
            "gateway_id": self.gateway_id,
            "name": self.name,
            "key_type": certificate.key_type,
            "cert_thumbprint": certificate.thumbprint,
            "cert_checked": checked,
            "cert_not_after": certificate.not_after.isoformat(),
            # Rows holding a data key: deleted ones too, until they are purged.
            "credentials": sum(counts.values()),
            "credentials_deleted": self.store.count_deleted_credentials(),
            # Mid-rotation both GMK versions hold data keys (vault.keys.rotation).
            "credentials_by_key_version": {str(v): n for v, n in counts.items()},
            "keystore": self.keystore.kind,
            "keystore_token": self.keystore.settings().get("token_label"),
            "epoch": self.epoch,
            "store": self.store.engine_kind,
            "store_location": self.store.location if self.member_id else None,
            "member_id": self.member_id,
            "master_key_version": gmk.version if gmk else None,
            "data_dir": str(self.data_dir.path.resolve()),
            "audit_sinks": self._audit_sinks_status(checked),
        }

    def _audit_sinks_status(self, checked: bool) -> list[dict[str, Any]]:
        """Each audit sink, how far behind it is, and since when it fails (a
        buffer sink that is behind is the warning an admin must see)."""
        return [{**vars(lag), "checked": checked} for lag in sink_lags(self, checked=checked)]

    def _required_setting(self, key: str) -> str:
        value = self.store.setting(key)
        if value is None:
            raise StorageError(f"the vault database lacks its {key!r} setting; it is damaged")
        return value


def _key_type(value: str) -> KeyType:
    if value == "ec-p256":
        return "ec-p256"
    if value == "rsa-3072":
        return "rsa-3072"
    raise StorageError(f"the vault holds a gateway key of unknown type {value!r}")


def open_store(data_dir: DataDir) -> VaultStore:
    """The vault database of ``data_dir``: the shared database its cluster file
    names (as that member), else its own SQLite file."""
    membership = read_membership(data_dir.path)
    if membership is None:
        return VaultStore.open(data_dir.db_path)
    return VaultStore.open_shared(membership.store, membership.member_id)
