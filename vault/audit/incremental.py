"""Checking the audit trail per request: only what the last full check did not see.

The page and the API used to re-verify every entry on each load (1.85 s at
100k entries, 18 s at a million; issue 15).  Now a full check
(``full_check_and_mark``: ``gwvault audit verify`` and the server's periodic
job) leaves a MACed mark (``vault.audit.mark``), and ``verify_since_mark``
checks the mark's MAC, that its entry still has the digest the mark names
(and its own MAC), and then every entry, signed statement and the head note
after it, exactly as the full check does.

The limit (threat T-AU-15): an entry before the mark edited after that full
check is found by the next full check, not by the page; the page says when
the full check last passed, and a failed full check is shown on the page
until one passes again.
"""

from __future__ import annotations

from dataclasses import replace

from vault.audit.log import AuditLog
from vault.audit.mark import MarkBook, MarkTamperedError, VerifiedMark
from vault.audit.report import TrailReport
from vault.gateway import Gateway


def full_check_and_mark(gateway: Gateway, by: str) -> TrailReport:
    """Check the whole trail and record the verdict in the mark (``by``: who checked).

    A pass moves the mark to the verified head note's entry; a failure never
    moves it, only records where the trail failed.  A vault without an audit
    key yet (new or just upgraded, before its first MACed entry) gets no mark.
    """
    report, head = AuditLog(gateway).check()
    store, trail = gateway.store, gateway.audit
    if trail.existing_mac_key() is None:
        return report
    with store.write():
        MarkBook(store, trail, gateway.gateway_id).record(
            report, head, gateway.context.now_iso(), by
        )
    return report


def verify_since_mark(gateway: Gateway, by: str) -> TrailReport:
    """The trail's verdict for the page and the API: the entries after the mark.

    Without a mark, a full check, which leaves one.  A mark that does not
    verify, or whose entry changed, is a failure (never believed, and no full
    pass over a large trail on every load): ``gwvault audit verify`` replaces it.
    """
    store, trail = gateway.store, gateway.audit
    book = MarkBook(store, trail, gateway.gateway_id)
    with store.reading():
        if trail.existing_mac_key() is not None:
            try:
                mark = book.load()
            except MarkTamperedError as e:
                return _failure(None, str(e))
            if mark is not None and mark.failed_seq is not None:
                return _failure(
                    mark.failed_seq,
                    f"the full check at {mark.checked_at} ({mark.checked_by}) found: {mark.problem}"
                    " (run gwvault audit verify once the vault is restored)",
                )
            if mark is not None and mark.through_seq is not None:
                return _after(gateway, mark, mark.through_seq)
    return full_check_and_mark(gateway, by)


def _after(gateway: Gateway, mark: VerifiedMark, through: int) -> TrailReport:
    found = gateway.store.find_audit("seq = ?", [through], limit=1)
    if not found or mark.head is None or found[0].hash != mark.head:
        return _failure(
            through,
            f"entry {through} no longer has the digest the last full check verified (the entry"
            " was edited or removed, or the mark put in); run gwvault audit verify",
        )
    report, _ = AuditLog(gateway).check(anchor=found[0])
    if not report.ok:
        return report
    signed = (report.signed_through, report.signed_at)
    if report.signed_through is None:
        signed = (mark.signed_through, mark.signed_at)
    return replace(
        report,
        signed_through=signed[0],
        signed_at=signed[1],
        full_check_through=through,
        full_check_at=mark.passed_at,
        full_check_by=mark.passed_by,
    )


def _failure(seq: int | None, problem: str) -> TrailReport:
    return TrailReport(
        ok=False, entries=0, first_seq=None, last_seq=None, checkpoints=0, rotations=0,
        signed_through=None, signed_at=None, head_seq=None, head_at=None, unkeyed=0,
        unvouched=0, first_bad_seq=seq, problem=problem,
    )  # fmt: skip
