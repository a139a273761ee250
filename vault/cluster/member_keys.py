"""A cluster member's path to the GMK: its keystore, its member key, its wrap.

On a single machine the keystore wraps the GMK itself (``master_keys``).  In a
cluster each member has an X25519 key pair (``agent_keys.member_wrap``): the
private key is wrapped by the member's own keystore and kept in its
``members`` row, and every GMK version is wrapped to each member's public key
in ``member_wraps``.  So a member that rotates the GMK hands the new version
to every other member without their keystores, and a member whose row and
wraps are deleted is cut off: a copy of its key file opens nothing written
after it left (threat T-CL-1).

Every member row is sealed (``vault.access.row_seal``); a new GMK is wrapped
only to members whose seal holds, so a database administrator who adds a row
or swaps a public key gets nothing (T-CL-2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from agent_keys.errors import IntegrityError, KeyBackendError
from agent_keys.keystore import Keystore
from agent_keys.master_key import MasterKey, master_key_context
from agent_keys.member_wrap import new_member_key, unwrap_as_member, wrap_to_member
from agent_keys.secret import Secret
from vault.access.row_seal import RowSeal
from vault.audit.trail import AuditTrail
from vault.context import RequestContext
from vault.store.vault_store import VaultStore

T = TypeVar("T")
MEMBER_COLUMNS = (
    "id, name, software_version, keystore_kind, public_key, wrapped_private_key, state, epoch,"
    " joined_at, last_seen_ms, mac"
)


class MemberStoppedError(KeyBackendError):
    """This member may not serve: removed, disabled, or of an older epoch."""


@dataclass(frozen=True)
class MemberRecord:
    """One row of ``members`` (its seal checked by whoever read it)."""

    id: str
    name: str
    software_version: str
    keystore_kind: str
    public_key: bytes
    wrapped_private_key: bytes
    state: str
    epoch: int
    joined_at: str
    last_seen_ms: int | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MemberRecord:
        return cls(
            id=str(row["id"]),
            name=str(row["name"]),
            software_version=str(row["software_version"]),
            keystore_kind=str(row["keystore_kind"]),
            public_key=bytes(row["public_key"]),
            wrapped_private_key=bytes(row["wrapped_private_key"]),
            state=str(row["state"]),
            epoch=int(row["epoch"]),
            joined_at=str(row["joined_at"]),
            last_seen_ms=int(row["last_seen_ms"]) if row["last_seen_ms"] is not None else None,
        )


def member_key_context(gateway_id: str, member_id: str) -> bytes:
    """What a member's private key is wrapped under its keystore with."""
    return f"gwvault/member-key/v1|{gateway_id}|member={member_id}".encode()


def member_wrap_context(gateway_id: str, member_id: str, version: int) -> bytes:
    """What GMK ``version`` is wrapped to a member with: the GMK's own context
    and the member, so a wrap moved to another row opens nothing."""
    return master_key_context(gateway_id, version) + f"|member={member_id}".encode()


class MemberVault(Protocol):
    """What a member's keys need of an opened vault (``vault.gateway.Gateway``)."""

    store: VaultStore
    keystore: Keystore
    context: RequestContext
    rows: RowSeal
    audit: AuditTrail

    @property
    def gateway_id(self) -> str: ...

    def cached_fact(self, name: str, load: Callable[[], T]) -> T: ...


def member_rows(
    store: VaultStore, where: str = "", params: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Rows of ``members`` (``where``: a fixed fragment, values bound), by name."""
    return store.rows(
        f"SELECT {MEMBER_COLUMNS} FROM members {where} ORDER BY name",  # noqa: S608 - fixed fragments
        params or [],
    )


class MemberKeys:
    """The GMK versions as one member holds them."""

    def __init__(self, vault: MemberVault, member_id: str) -> None:
        self._vault = vault
        self.member_id = member_id

    def own_row(self) -> dict[str, Any] | None:
        rows = member_rows(self._vault.store, "WHERE id = ?", [self.member_id])
        return rows[0] if rows else None

    def unwrap(self, version: int, keystore: Keystore | None = None) -> Secret:
        """GMK ``version`` through this member's wrap (its private key through
        ``keystore``, by default the vault's); ``MemberStoppedError`` when this
        member has no row or no wrap of it (removed, or not handed that version)."""
        vault = self._vault
        rows = vault.store.rows(
            "SELECT wrapped FROM member_wraps WHERE member_id = ? AND gmk_version = ?",
            [self.member_id, version],
        )
        if not rows:
            removed = self.own_row() is None
            raise MemberStoppedError(
                ("this member was removed from the cluster" if removed else
                 f"this member holds no wrap of master key version {version}")
                + "; join it again with: gwvault cluster join --store URL --recovery-key-file F"
            )  # fmt: skip
        context = member_wrap_context(vault.gateway_id, self.member_id, version)
        try:
            private_key = self._private_key(keystore or vault.keystore)
            return unwrap_as_member(private_key, bytes(rows[0]["wrapped"]), context)
        except IntegrityError as e:
            raise IntegrityError(
                f"this member's wrap of master key version {version} does not open; it was"
                " changed in the shared database"
            ) from e

    def _private_key(self, keystore: Keystore) -> Secret:
        row = self.own_row()
        if row is None:
            raise MemberStoppedError(
                "this member is not in the cluster any more (removed); join it again with:"
                " gwvault cluster join --store URL --recovery-key-file F"
            )
        context = member_key_context(self._vault.gateway_id, self.member_id)
        return keystore.unwrap_master_key(bytes(row["wrapped_private_key"]), context)

    def rekey(self, keystore: Keystore, master_keys: list[MasterKey]) -> None:
        """A new key pair for this member, its private key wrapped by ``keystore``
        and ``master_keys`` wrapped to it (inside the caller's write): a keystore
        migration, where the old keystore (and with it the old private key) may
        be lost."""
        vault = self._vault
        private_key, public_key = new_member_key(vault.context.random)
        context = member_key_context(vault.gateway_id, self.member_id)
        wrapped = keystore.wrap_master_key(private_key, context)
        if keystore.unwrap_master_key(wrapped, context) != private_key:
            raise IntegrityError(
                "the new keystore did not give the member key back; nothing changed"
            )
        vault.store.execute(
            "UPDATE members SET public_key = ?, wrapped_private_key = ?, keystore_kind = ?"
            " WHERE id = ?",
            [public_key, wrapped, keystore.kind, self.member_id],
        )
        vault.rows.reseal("members", self.member_id)
        row = self.own_row()
        if row is None:
            raise MemberStoppedError("this member was removed from the cluster meanwhile")
        record = MemberRecord.from_row(row)
        for gmk in master_keys:
            self.add_wrap(record, gmk)

    def wrap_for_members(self, gmk: MasterKey) -> int:
        """Wrap ``gmk`` to every enabled member whose row's seal holds (inside
        the caller's write); returns how many.  A disabled member gets one too
        (enabling it again must not need the recovery key); a removed one has
        no row."""
        vault, count = self._vault, 0
        for row in member_rows(vault.store):
            vault.rows.check("members", row)
            record = MemberRecord.from_row(row)
            self.add_wrap(record, gmk)
            count += 1
        return count

    def add_wrap(self, member: MemberRecord, gmk: MasterKey) -> None:
        vault = self._vault
        context = member_wrap_context(vault.gateway_id, member.id, gmk.version)
        wrapped = wrap_to_member(member.public_key, gmk.key, context, vault.context.random)
        vault.store.execute(
            "INSERT INTO member_wraps (member_id, gmk_version, wrapped) VALUES (?, ?, ?)"
            " ON CONFLICT (member_id, gmk_version) DO UPDATE SET wrapped = excluded.wrapped",
            [member.id, gmk.version, wrapped],
        )
