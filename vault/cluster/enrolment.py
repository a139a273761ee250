"""Making a cluster member: its key pair, its keystore's wrap, its wraps of the GMK.

The first member is made by ``gwvault init --store``; every other one by
``gwvault cluster join``, which reaches the GMK with the recovery key (the
only thing a new machine brings) and never needs another member's keystore.
"""

from __future__ import annotations

import secrets
import socket

from agent_keys.errors import ConflictError, InvalidInputError
from agent_keys.master_key import MasterKey
from agent_keys.member_wrap import new_member_key
from agent_keys.randomness import RandomSource
from vault.cluster.member_keys import MemberKeys, MemberRecord, MemberVault, member_key_context
from vault.names import check_gateway_name
from vault.version import SOFTWARE_VERSION

MEMBER_ACTIONS = (
    "cluster.member-joined",
    "cluster.member-disabled",
    "cluster.member-enabled",
    "cluster.member-removed",
)
"""The trail's record of each member's state (the row must agree with the newest)."""


def new_member_id(random: RandomSource) -> str:
    return random(16).hex()


def member_target(member_id: str) -> str:
    """The audit target that names a member."""
    return f"member:{member_id}"


def default_member_name() -> str:
    name = socket.gethostname().split(".", 1)[0] or "member"
    return name if _valid(name) else f"member-{secrets.token_hex(3)}"


def _valid(name: str) -> bool:
    try:
        check_gateway_name(name)
    except InvalidInputError:
        return False
    return True


def enroll_member(
    vault: MemberVault, master_keys: MasterKey | list[MasterKey], name: str | None, epoch: int
) -> MemberRecord:
    """Add this machine (``vault.store.member_id``) as an enabled member of the
    current epoch, with a wrap of each of ``master_keys``; inside the caller's
    write.  Audited as ``cluster.member-joined``."""
    store, member_id = vault.store, vault.store.member_id
    if member_id is None:
        raise ValueError("enrolling needs the store opened as a member")
    name = name or default_member_name()
    check_gateway_name(name)
    if store.rows("SELECT 1 FROM members WHERE name = ?", [name]):
        raise ConflictError(f"the cluster has a member named {name!r} already; choose --name")
    private_key, public_key = new_member_key(vault.context.random)
    wrapped = vault.keystore.wrap_master_key(
        private_key, member_key_context(vault.gateway_id, member_id)
    )
    record = MemberRecord(
        id=member_id,
        name=name,
        software_version=SOFTWARE_VERSION,
        keystore_kind=vault.keystore.kind,
        public_key=public_key,
        wrapped_private_key=wrapped,
        state="enabled",
        epoch=epoch,
        joined_at=vault.context.now_iso(),
        last_seen_ms=store.engine.database_time_ms(),
    )
    store.insert_row("members", record.__dict__)
    keys = MemberKeys(vault, member_id)
    for gmk in master_keys if isinstance(master_keys, list) else [master_keys]:
        keys.add_wrap(record, gmk)
    vault.rows.reseal("members", member_id)
    vault.audit.record(
        "cluster.member-joined",
        member_target(member_id),
        member_id=member_id,
        name=name,
        keystore=record.keystore_kind,
        epoch=epoch,
        state="enabled",
        software_version=SOFTWARE_VERSION,
    )
    return record
