"""Whether the gateway's keys are backed up: the backup reminder of issue 19.

DMG told the admin to back up the gateway certificate at install, and nothing
reminded anyone after that.  Here the answer comes from the audit trail, and
only from entries whose hash and MAC verify (``RowSeal.verified_details``):
a setting saying "backed up" would be a row any database writer could plant
(threat T-BK-1).  A backup is a recovery bundle (``recovery.exported``), a
PKCS#12 export of the key pair (``cert.exported``), or the restore of a
bundle (``gateway.restored``: that bundle exists).  It counts only when it is
newer than the newest change of what it holds: the vault's creation, a GMK or
key pair rotation, a key pair import, a new recovery key (a bundle made
before it opens only with the old key).

An entry that does not verify never silences the reminder: a forged backup
entry is no backup, and a change entry that does not verify still counts as a
change.  Deleting entries breaks the hash chain, which ``audit verify`` (and
``gwvault doctor``) report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_keys.errors import AccessDeniedError, KeyBackendError
from vault.access.row_seal import TamperedRowError
from vault.gateway import Gateway

CHANGES = (
    "gateway.initialized",
    "keys.rotation-started",
    "cert.rotated",
    "cert.imported",
    "recovery-key.changed",
)
BACKUPS = ("recovery.exported", "cert.exported", "gateway.restored")
BACKUP_COMMAND = "gwvault recovery export --out FILE (or: gwvault cert export --out FILE.p12)"


@dataclass(frozen=True)
class AuditedEvent:
    """One verified (or, with ``verified`` False, refused) trail entry."""

    action: str
    seq: int
    at: str
    verified: bool

    def view(self) -> dict[str, Any]:
        return {"action": self.action, "seq": self.seq, "at": self.at, "verified": self.verified}


@dataclass(frozen=True)
class BackupState:
    """The newest verified backup and key change, and whether a backup is due."""

    needed: bool
    last_backup: AuditedEvent | None
    last_change: AuditedEvent | None

    @property
    def reminder(self) -> str | None:
        """One sentence saying what is not backed up and the command to run; None if nothing."""
        if not self.needed:
            return None
        if self.last_backup is not None and not self.last_backup.verified:
            what = (
                f"the newest backup entry (audit seq {self.last_backup.seq}) does not verify, so"
                " no backup is known (check: gwvault audit verify)"
            )
        elif self.last_backup is None:
            what = "no recovery bundle or PKCS#12 export of this gateway's keys was ever made"
        else:
            what = "no recovery bundle or PKCS#12 export was made since"
            if self.last_change is not None:
                what += f" the last {self.last_change.action} ({self.last_change.at})"
        return f"{what}; run: {BACKUP_COMMAND}"

    def view(self) -> dict[str, Any]:
        """The JSON form (``status --json``, the API, ``doctor``)."""
        return {
            "needed": self.needed,
            "reminder": self.reminder,
            "last_backup": None if self.last_backup is None else self.last_backup.view(),
            "last_change": None if self.last_change is None else self.last_change.view(),
        }


def backup_state(gateway: Gateway) -> BackupState:
    """Whether a backup newer than the last key change exists, by the verified trail.

    Needs the audit key (the vault unlocked); raises what unlocking raises.
    """
    backup, details = _newest(gateway, BACKUPS)
    if (
        backup is not None
        and backup.action == "cert.exported"
        and details.get("format") != "pkcs12"
    ):
        backup = None  # only a PKCS#12 (the private key) is a backup; a public PEM is not
    change, _ = _newest(gateway, CHANGES)
    trusted_backup = backup if backup is not None and backup.verified else None
    needed = trusted_backup is None or (change is not None and change.seq > trusted_backup.seq)
    return BackupState(needed=needed, last_backup=backup, last_change=change)


def _newest(
    gateway: Gateway, actions: tuple[str, ...]
) -> tuple[AuditedEvent | None, dict[str, Any]]:
    """The newest entry among ``actions`` and its details ({} when it does not verify)."""
    marks = ", ".join("?" * len(actions))
    where = f"target = ? AND action IN ({marks})"
    entry = gateway.rows.newest_entry(where, [gateway.gateway_id, *actions])
    if entry is None:
        return None, {}
    try:
        details = gateway.rows.verified_details(entry)
    except TamperedRowError:
        # Not recorded as a refused row: a read-only status must not write,
        # and ``audit verify`` names the entry.
        return AuditedEvent(entry.action, entry.seq, entry.at, verified=False), {}
    return AuditedEvent(entry.action, entry.seq, entry.at, verified=True), details


def backup_view(gateway: Gateway) -> dict[str, Any]:
    """``backup_state(gateway).view()``, or, when the keystore cannot unlock the
    vault now (a token absent, no PIN), a view that says the state is unknown."""
    try:
        return backup_state(gateway).view()
    except (KeyBackendError, AccessDeniedError) as e:
        return unknown_backup_view(str(e))


def unknown_backup_view(why: str) -> dict[str, Any]:
    """The view when the trail could not be read with its key (``why``: one line)."""
    return {"needed": None, "reminder": None, "unknown": why, "last_backup": None,
            "last_change": None}  # fmt: skip
