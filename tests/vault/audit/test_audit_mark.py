"""The "verified through entry N" mark: the page's and the API's check starts after it.

A full check (``gwvault audit verify``, the server's periodic job) moves the
mark only when it passes; ``verify_since_mark`` believes the mark only when
its MAC holds and its entry still has the digest it names (T-AU-15).
"""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

from agent_keys.secret import Secret
from tests.conftest import fixed_clock, make_context
from tests.vault.cli.gwvault_process import GwvaultCli
from tests.vault.store.old_schemas import copy_schema_3_vault
from vault.audit.background import full_check_and_mark
from vault.audit.incremental import verify_since_mark
from vault.audit.log import AuditLog
from vault.audit.report import TrailReport
from vault.context import RequestContext
from vault.format.audit_chain import CHECKPOINT_INTERVAL
from vault.gateway import Gateway
from vault.keys.rotation import KeyRotation


def _record(path: Path, count: int, context: RequestContext | None = None) -> None:
    with Gateway.open(path, context or make_context()) as gateway, gateway.store.write():
        for _ in range(count):
            gateway.audit.record("credential.tested", "sales", "ok")


def _since_mark(path: Path) -> TrailReport:
    with Gateway.open(path, make_context()) as gateway:
        return verify_since_mark(gateway, "test")


def _full(path: Path) -> TrailReport:
    with Gateway.open(path, make_context()) as gateway:
        return full_check_and_mark(gateway)


def _sql(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path / "vault.db")
    try:
        with db:
            return db.execute(sql, params).fetchall()
    finally:
        db.close()


def _tamper(path: Path, seq: int) -> None:
    """Edit one entry as someone holding the file (not the keys) could."""
    _sql(path, "DROP TRIGGER IF EXISTS audit_events_no_update")
    _sql(path, "UPDATE audit_events SET actor = 'x' WHERE seq = ?", (seq,))


def _mark_through(path: Path) -> object:
    return _sql(path, "SELECT through_seq FROM audit_verified")[0][0]


def test_after_a_full_check_only_newer_entries_are_checked(data_dir: Path) -> None:
    _record(data_dir, CHECKPOINT_INTERVAL + 20)
    full = _full(data_dir)
    assert full.ok and full.full_check_through is None, full.summary()
    marked = _mark_through(data_dir)
    assert marked == full.head_seq
    _record(data_dir, 5)
    report = _since_mark(data_dir)
    assert report.ok, report.summary()
    assert (report.first_seq, report.entries, report.full_check_through) == (marked, 6, marked)
    assert report.full_check_by == "background" and report.full_check_at is not None
    assert report.signed_through == full.signed_through  # carried from the full check
    assert report.head_seq == report.last_seq
    assert "checked now, those before by the full check at" in report.summary()


def test_an_entry_edited_after_the_mark_is_reported(data_dir: Path) -> None:
    _record(data_dir, 10)
    _full(data_dir)
    _record(data_dir, 10)
    last = int(str(_sql(data_dir, "SELECT max(seq) FROM audit_events")[0][0]))
    _tamper(data_dir, last - 3)
    report = _since_mark(data_dir)
    assert (report.ok, report.first_bad_seq) == (False, last - 3), report.summary()


def test_an_entry_edited_before_the_mark_is_found_by_the_full_check_and_stops_the_mark(
    data_dir: Path,
) -> None:
    _record(data_dir, 10)
    _full(data_dir)
    marked = _mark_through(data_dir)
    _record(data_dir, 10)
    _tamper(data_dir, 3)
    assert _since_mark(data_dir).ok  # the limit: the page does not re-read entry 3
    run = GwvaultCli(data_dir)("audit", "verify")
    assert run.code == 1 and "FAILED at entry 3" in run.err, (run.out, run.err)
    assert _mark_through(data_dir) == marked  # the failed check did not move it
    # From now on the page shows the failure the full check found.
    report = _since_mark(data_dir)
    assert (report.ok, report.first_bad_seq) == (False, 3), report.summary()
    assert "the full check at" in (report.problem or "")
    _record(data_dir, 2)
    assert _full(data_dir).ok is False and _mark_through(data_dir) == marked


def test_a_passing_cli_check_moves_the_mark(data_dir: Path) -> None:
    _record(data_dir, 3)
    run = GwvaultCli(data_dir)("audit", "verify")
    assert run.code == 0, run.err
    first = _mark_through(data_dir)
    _record(data_dir, 3)
    assert GwvaultCli(data_dir)("audit", "verify").code == 0
    assert isinstance(first, int) and _mark_through(data_dir) == first + 3
    by = _sql(data_dir, "SELECT passed_by FROM audit_verified")[0][0]
    assert str(by).startswith("cli:")


def test_a_forged_mark_is_refused(data_dir: Path) -> None:
    _record(data_dir, 10)
    _full(data_dir)
    _record(data_dir, 10)
    _tamper(data_dir, 15)
    # Move the mark past the edited entry, as plain SQL can: the MAC no longer holds.
    last, digest = _sql(data_dir, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")[0]
    _sql(data_dir, "UPDATE audit_verified SET through_seq = ?, head = ?", (last, digest))
    report = _since_mark(data_dir)
    assert report.ok is False and "changed outside gwvault" in (report.problem or "")
    assert report.summary().startswith("FAILED: the audit trail's verified-through mark")
    # The full check ignores it, finds the edit, and writes a mark that verifies.
    failed = _full(data_dir)
    assert (failed.ok, failed.first_bad_seq) == (False, 15)
    refused = "SELECT target FROM audit_events WHERE action = 'integrity.row-refused'"
    assert _sql(data_dir, refused) == [("audit_verified:1",)]
    assert (_since_mark(data_dir).first_bad_seq, _mark_through(data_dir)) == (15, None)


def test_a_mark_whose_entry_changed_is_refused(data_dir: Path) -> None:
    _record(data_dir, 10)
    _full(data_dir)
    marked = _mark_through(data_dir)
    _sql(data_dir, "DROP TRIGGER IF EXISTS audit_events_no_update")
    _sql(data_dir, "UPDATE audit_events SET hash = zeroblob(32) WHERE seq = ?", (marked,))
    report = _since_mark(data_dir)
    assert (report.ok, report.first_bad_seq) == (False, marked), report.summary()


def test_a_deleted_mark_means_a_full_check(data_dir: Path) -> None:
    _record(data_dir, 10)
    _full(data_dir)
    _tamper(data_dir, 4)
    _sql(data_dir, "DELETE FROM audit_verified")
    report = _since_mark(data_dir)
    assert (report.ok, report.first_bad_seq, report.full_check_through) == (False, 4, None)


def test_the_mark_survives_a_key_rotation_and_a_prune_drops_it_safely(
    data_dir: Path, recovery_key: Secret
) -> None:
    _record(data_dir, 10)
    _full(data_dir)
    marked = _mark_through(data_dir)
    with Gateway.open(data_dir, make_context()) as gateway:
        KeyRotation(gateway).rotate(recovery_key)  # the audit key is rewrapped, not replaced
    report = _since_mark(data_dir)
    assert report.ok and report.full_check_through == marked, report.summary()
    # A prune through the marked entry removes it: the mark goes with it.
    tomorrow = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    later = RequestContext("test:alice", "cli", clock=fixed_clock(tomorrow))
    _record(data_dir, 3, later)
    with Gateway.open(data_dir, later) as gateway:
        pruned = AuditLog(gateway).prune(tomorrow - datetime.timedelta(hours=1))
    assert isinstance(marked, int) and pruned.through_seq > marked
    assert _sql(data_dir, "SELECT count(*) FROM audit_verified") == [(0,)]
    after = _since_mark(data_dir)  # a full check again, which marks the pruned trail
    assert after.ok and after.full_check_through is None, after.summary()
    assert _since_mark(data_dir).full_check_through == _mark_through(data_dir)


def test_an_upgraded_schema_3_vault_gets_its_mark(tmp_path: Path) -> None:
    data_dir = copy_schema_3_vault(tmp_path / "data")  # upgraded through 4 to 5 on opening
    first = _since_mark(data_dir)
    assert first.ok and first.full_check_through is None, first.summary()
    _record(data_dir, 2)
    second = _since_mark(data_dir)
    assert second.ok and second.full_check_through == _mark_through(data_dir), second.summary()


def test_a_prune_before_the_mark_keeps_it(data_dir: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    _record(data_dir, 5)
    tomorrow = RequestContext("test:alice", "cli", clock=fixed_clock(now + datetime.timedelta(1)))
    _record(data_dir, 5, tomorrow)
    _full(data_dir)
    marked = _mark_through(data_dir)
    with Gateway.open(data_dir, tomorrow) as gateway:
        pruned = AuditLog(gateway).prune(now + datetime.timedelta(hours=1))
    assert isinstance(marked, int) and 0 < pruned.through_seq < marked
    report = _since_mark(data_dir)
    assert report.ok and report.full_check_through == marked, report.summary()
    assert _full(data_dir).ok  # the pruned trail verifies in full, too
