"""Whether this cluster member may serve: in the cluster, enabled, of the current epoch.

Checked when a member unlocks, on every use of a server's or agent's kept
vault (as a cached fact, re-read whenever a member row or a setting changes),
and by ``/readyz``.  A removed or disabled member stops within one request
(T-CL-1); a member whose data dir or whose database was put back from an
older copy stops when the epochs disagree (T-CL-3).
"""

from __future__ import annotations

from typing import Any

from vault.cluster.enrolment import MEMBER_ACTIONS, member_target
from vault.cluster.member_keys import MemberKeys, MemberRecord, MemberStoppedError
from vault.store.locator import ClusterMembership

_JOIN_AGAIN = "join it again with: gwvault cluster join --store URL --recovery-key-file F"


def check_member_epoch(vault: Any) -> None:  # a vault.gateway.Gateway (which imports this)
    """Raise ``MemberStoppedError`` when this member's epoch and the database's
    disagree; needs no key, so it is asked before any unwrap."""
    membership: ClusterMembership | None = vault.membership()
    if membership is None:
        return
    cluster_epoch = vault.epoch
    if membership.epoch > cluster_epoch:
        raise MemberStoppedError(
            f"the shared database is at epoch {cluster_epoch}, but this member has seen epoch"
            f" {membership.epoch}: the database was put back from an older copy; it is not used"
        )
    if membership.epoch != cluster_epoch:
        raise MemberStoppedError(
            f"this member belongs to epoch {membership.epoch}, and the cluster moved to epoch"
            f" {cluster_epoch} (a restore); {_JOIN_AGAIN}"
        )


def check_member_standing(vault: Any) -> None:  # a vault.gateway.Gateway (which imports this)
    """Raise ``MemberStoppedError`` saying why this member may not serve."""
    keys: MemberKeys | None = vault.member_keys
    if keys is None:
        return
    check_member_epoch(vault)
    row = keys.own_row()
    if row is None:
        raise MemberStoppedError(f"this member was removed from the cluster; {_JOIN_AGAIN}")
    vault.rows.check("members", row)
    record = MemberRecord.from_row(row)

    def agrees(action: str, details: dict[str, Any]) -> bool:
        # A row put back from an older copy (a removed member's, a disabled one
        # shown enabled) disagrees with the trail's newest entry for it.
        return action != "cluster.member-removed" and details.get("state") == record.state

    vault.rows.check_current("members", record.id, member_target(record.id), MEMBER_ACTIONS, agrees)
    if record.state != "enabled":
        raise MemberStoppedError(
            f"this member ({record.name}) is disabled; an admin enables it with:"
            f" gwvault cluster enable {record.name}"
        )
    if record.epoch != vault.epoch:  # its sealed row: a row of another epoch put in
        raise MemberStoppedError(
            f"this member's row belongs to epoch {record.epoch}, and the cluster is at epoch"
            f" {vault.epoch}; {_JOIN_AGAIN}"
        )
