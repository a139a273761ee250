"""The "verified through entry N" mark: what the last full check of the trail found.

A full check (``gwvault audit verify``, the server's periodic job) costs a pass
over every entry, 18 s at a million; the page and the API check only the
entries after the mark (``vault.audit.incremental``).  The mark is one row of
``audit_verified``: the entry the check passed through and that entry's digest,
when and by whom, the signed checkpoint it had reached, and, when the last
full check failed, where and why.  The row is MACed (``vault.format.row_mac``,
under the key derived from the audit key), so a row written with plain SQL is
refused, never believed.

A failed check never moves the pass forward; it only records the failure,
which the page then reports until a full check passes again.  A mark whose
entry a prune removed is dropped with the prune (``drop_if_pruned``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from agent_keys.errors import IntegrityError
from vault.access.row_seal import REFUSED_ACTION
from vault.audit.report import TrailReport
from vault.audit.trail import AuditTrail
from vault.format.audit_chain import AuditHead
from vault.format.row_mac import RowValue, row_key, row_mac, row_mac_ok
from vault.store.vault_store import VaultStore

_TABLE = "audit_verified"
_PROBLEM_CHARS = 500


class MarkTamperedError(IntegrityError):
    """The mark's row does not verify: it was written without the audit key."""

    def __init__(self) -> None:
        super().__init__(
            "the audit trail's verified-through mark was changed outside gwvault; it is not"
            " trusted (run gwvault audit verify for a full check, which replaces it)"
        )


@dataclass(frozen=True)
class VerifiedMark:
    """The last full check: passed through ``through_seq`` (None: never), or failed."""

    through_seq: int | None
    head: bytes | None  # the digest of entry through_seq
    passed_at: str | None
    passed_by: str | None
    signed_through: int | None  # the signed checkpoint that check had reached
    signed_at: str | None
    checked_at: str  # the last full check, passed or not
    checked_by: str
    failed_seq: int | None  # None: the last full check passed
    problem: str | None


class MarkBook:
    """Reads and writes the mark of one vault, checking and making its MAC."""

    def __init__(self, store: VaultStore, trail: AuditTrail, gateway_id: str) -> None:
        self._store = store
        self._trail = trail
        self._gateway_id = gateway_id

    def load(self) -> VerifiedMark | None:
        """The mark, or None when there is none (or no audit key to check one with).

        ``MarkTamperedError`` when its row does not verify.
        """
        rows = self._store.rows(f"SELECT * FROM {_TABLE} WHERE id = 1", [])  # noqa: S608 - fixed name
        if not rows:
            return None
        mac_key = self._trail.existing_mac_key()
        row = _row_values(rows[0])
        mac = row.pop("mac")
        row.pop("id")
        if mac_key is None or not isinstance(mac, bytes):
            raise MarkTamperedError
        if not row_mac_ok(row_key(mac_key.key), self._gateway_id, _TABLE, row, mac):
            raise MarkTamperedError
        return VerifiedMark(**row)  # the MAC vouches for the values

    def record(self, report: TrailReport, head: AuditHead | None, at: str, by: str) -> bool:
        """Store a full check's verdict inside the caller's write; True if the mark moved.

        A pass moves the mark to ``head`` (the check's verified head note) when
        that entry is still there with the same digest and the mark is not
        already further on; a failure keeps the last pass and records where it
        failed.  A mark whose row does not verify is replaced, and that recorded.
        """
        try:
            old = self.load()
        except MarkTamperedError:
            old = None  # replaced below; recorded, as any refused sealed row is
            self._trail.record(REFUSED_ACTION, f"{_TABLE}:1", "refused", table=_TABLE)
        mark = VerifiedMark(
            through_seq=None, head=None, passed_at=None, passed_by=None, signed_through=None,
            signed_at=None, checked_at=at, checked_by=by, failed_seq=None, problem=None,
        )  # fmt: skip
        if old is not None:
            kept = asdict(old) | {"checked_at": at, "checked_by": by}
            mark = VerifiedMark(**kept | {"failed_seq": None, "problem": None})
        moved = False
        if not report.ok:
            problem = (report.problem or "")[:_PROBLEM_CHARS]
            mark = VerifiedMark(**asdict(mark) | {"failed_seq": report.first_bad_seq or 0,
                                                  "problem": problem})  # fmt: skip
        elif head is not None and self._still_there(head) and head.seq >= (mark.through_seq or 0):
            mark = VerifiedMark(
                **asdict(mark)
                | {"through_seq": head.seq, "head": head.hash, "passed_at": at, "passed_by": by,
                   "signed_through": report.signed_through, "signed_at": report.signed_at}
            )  # fmt: skip
            moved = True
        self._write(mark)
        return moved

    def drop_if_pruned(self, through_seq: int) -> None:
        """Inside a prune's write: drop a mark whose entry is about to be removed."""
        self._store.execute(
            f"DELETE FROM {_TABLE} WHERE through_seq IS NULL OR through_seq <= ?",  # noqa: S608 - fixed name
            [through_seq],
        )

    def _still_there(self, head: AuditHead) -> bool:
        # The check read a snapshot; a prune may have removed the entry since.
        rows = self._store.rows("SELECT hash FROM audit_events WHERE seq = ?", [head.seq])
        return bool(rows) and bytes(rows[0]["hash"]) == head.hash

    def _write(self, mark: VerifiedMark) -> None:
        key = self._trail.mac_key()
        row: dict[str, RowValue] = dict(asdict(mark))
        mac = row_mac(row_key(key.key), self._gateway_id, _TABLE, row)
        columns = ", ".join(["id", *row, "mac"])
        marks = ", ".join("?" * (len(row) + 2))
        updates = ", ".join(f"{name} = excluded.{name}" for name in [*row, "mac"])
        self._store.execute(
            f"INSERT INTO {_TABLE} ({columns}) VALUES ({marks})"  # noqa: S608 - fixed names
            f" ON CONFLICT (id) DO UPDATE SET {updates}",
            [1, *row.values(), mac],
        )


def _row_values(row: dict[str, Any]) -> dict[str, Any]:
    return {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()}
