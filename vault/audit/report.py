"""The verdict of ``vault.audit.verify`` on a trail, as the CLI, the page and
the API show it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrailReport:
    """The verdict on a trail, and where it first went wrong."""

    ok: bool
    entries: int  # entries checked (up to the first bad one)
    first_seq: int | None
    last_seq: int | None
    checkpoints: int  # checkpoints whose signature and head were verified
    rotations: int  # rotation records whose signatures and head were verified
    signed_through: int | None  # the last entry a verified checkpoint covers
    signed_at: str | None  # the time that checkpoint's signature states
    head_seq: int | None  # the vault's MACed note: its last MACed entry (not in an export)
    head_at: str | None  # and that entry's time (None in a note from before 2026-12)
    unkeyed: int  # entries without a MAC (failed unlocks, entries older than the audit key)
    unvouched: int  # checkpoints by a certificate not linked to the trusted one: not counted
    first_bad_seq: int | None
    problem: str | None
    # Set when only the entries after the last full check's mark were checked
    # now (vault.audit.incremental): that check's entry, time and checker.
    full_check_through: int | None = None
    full_check_at: str | None = None
    full_check_by: str | None = None

    def summary(self) -> str:
        """One line for a terminal or a page.

        The last MACed entry and the signed time are what to compare between
        two runs: if either goes back, the vault file was rolled back (T-AU-12).
        """
        if not self.ok:
            where = f" at entry {self.first_bad_seq}" if self.first_bad_seq is not None else ""
            return f"FAILED{where}: {self.problem}"
        signed = (
            f"signed through entry {self.signed_through} at {self.signed_at}"
            if self.signed_through is not None
            else "no signed checkpoint yet"
        )
        head = ""
        if self.head_seq is not None:
            head = f"; last MACed entry {self.head_seq}"
            head += f" at {self.head_at}" if self.head_at is not None else ""
        if self.full_check_through is not None:
            return (
                f"OK: {self.entries} entries ({self.first_seq}..{self.last_seq}) checked now,"
                f" those before by the full check at {self.full_check_at}"
                f" ({self.full_check_by}), {signed}{head}"
            )
        return f"OK: {self.entries} entries ({self.first_seq}..{self.last_seq}), {signed}{head}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
