"""Making this machine the first member of a cluster whose store already holds a vault.

Two ways lead here, both with every GMK version already in hand:

- ``gwvault store migrate --to URL``: a single machine's vault was copied into
  PostgreSQL; its keystore stays this member's keystore.
- ``gwvault restore --bundle F --store URL``: a recovery bundle was restored
  into PostgreSQL; a new keystore was made for this machine.

Whatever the copied rows say about members (a bundle of a cluster carries the
old cluster's) is forgotten: the old members belong to another epoch and hold
no wrap here.  Called inside the write that finishes the move.
"""

from __future__ import annotations

from agent_keys.master_key import MasterKey
from vault.cluster.enrolment import enroll_member
from vault.cluster.member_keys import MemberVault
from vault.keys.binding_file import BINDING_DIGEST


def forget_members(vault: MemberVault) -> None:
    """Delete every member, its wraps, TLS identity and binding digest (inside
    the caller's write): the vault is about to have one machine (or a new first
    member)."""
    store = vault.store
    store.execute("DELETE FROM member_wraps", [])
    store.execute("DELETE FROM members", [])
    store.execute("DELETE FROM leases", [])
    # A member's TLS row is keyed by its id (text); a single machine's is 1.
    for row in store.rows("SELECT id FROM tls_identity", []):
        if isinstance(row["id"], str) and not row["id"].isdigit():
            store.execute("DELETE FROM tls_identity WHERE id = ?", [row["id"]])
    for row in store.rows("SELECT key FROM settings WHERE key LIKE ?", [BINDING_DIGEST + ":%"]):
        store.delete_setting(str(row["key"]))


def found_cluster(
    vault: MemberVault, master_keys: list[MasterKey], name: str | None, epoch: int
) -> None:
    """This machine (``vault.store.member_id``) as the only member of ``epoch``:
    the old members forgotten, the GMK rows carrying no keystore wrap of their
    own, every version wrapped to the new member (inside the caller's write)."""
    forget_members(vault)
    vault.store.execute("UPDATE master_keys SET keystore_wrapped = ?", [b""])
    enroll_member(vault, master_keys, name, epoch)
