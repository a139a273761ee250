"""The tamper matrix of the audit issue: edit, delete, insert, reorder and cut
off entries, in the vault's table (on each storage engine) and in an export,
and check that verification fails and names the first entry that is no longer
proven.

A tamperer with the database's own rights gets the append-only triggers out of
the way (drops them from the SQLite file; PostgreSQL's superuser turns them
off), so every database case does that first (``vaults.sql(attacker=True)``).  The trail holds 250
entries, so interval checkpoints lie at 100 and 200.
"""

from __future__ import annotations

import datetime
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.errors import IntegrityError, InvalidInputError
from agent_keys.gateway_identity import (
    GatewayCertificate,
    KeyType,
    b64url,
)
from tests.audit_collector import AuditCollector
from tests.conftest import fixed_clock, make_context
from tests.store_engines import EngineVaults, StoreEngineName
from tests.vault.audit.trails import (
    TRAIL_LENGTH,
    Lines,
    build_trail,
    flipped_signature,
    forged_identity,
    line_index,
    read_lines,
    rechain_export_from,
    verify_db,
    write_lines,
)
from tests.vault_sql import VaultSql
from vault.access.row_seal import TamperedRowError
from vault.audit.export import verify_export
from vault.audit.log import AuditLog
from vault.audit.sinks.against import verify_against
from vault.audit.sinks.registry import AuditSinkService
from vault.audit.verify import TrailReport
from vault.cluster.member_keys import MemberStoppedError
from vault.context import RequestContext
from vault.format.audit_chain import (
    AuditFields,
    canonical_json,
    checkpoint_message,
    entry_digest,
    head_mac,
    rotation_message,
)
from vault.gateway import Gateway
from vault.notify.sink_config import webhook_config

pytestmark = pytest.mark.contract

_FIELDS = ("seq", "at", "actor", "channel", "action", "target", "outcome", "request_id", "details")

Tamper = Callable[[VaultSql], None]


# -- tampering helpers (what an attacker with the file and this code can do) ----


def _fields(db: VaultSql, seq: int) -> AuditFields:
    row = db.one(f"SELECT {', '.join(_FIELDS)} FROM audit_events WHERE seq = ?", [seq])  # noqa: S608 - fixed column list
    return AuditFields(*row)


def _hash(db: VaultSql, seq: int) -> bytes:
    return bytes(db.one("SELECT hash FROM audit_events WHERE seq = ?", [seq])[0])


def _rechain_from(db: VaultSql, seq: int) -> None:
    """Recompute prev and digest of every entry from ``seq`` on (no audit key: MACs stay)."""
    prev = _hash(db, seq - 1)
    for (current,) in db.rows("SELECT seq FROM audit_events WHERE seq >= ? ORDER BY seq", [seq]):
        digest = entry_digest(prev, _fields(db, current))
        db.execute(
            "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", [prev, digest, current]
        )
        prev = digest


def _insert_forged(db: VaultSql, seq: int, mac: bytes | None) -> None:
    """A new entry at ``seq``, chained onto entry ``seq - 1``."""
    fields = AuditFields(seq, "2026-01-01T00:00:00+00:00", "os:mallory", "cli",
                         "credential.deleted", "pg-main", "ok", "f" * 32, "{}")  # fmt: skip
    prev = _hash(db, seq - 1)
    db.execute(
        f"INSERT INTO audit_events ({', '.join(_FIELDS)}, prev_hash, hash, mac)"  # noqa: S608 - fixed column list
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [*vars(fields).values(), prev, entry_digest(prev, fields), mac],
    )


def _shift_up_from(db: VaultSql, seq: int) -> None:
    # Two steps: the primary key would collide on a direct seq + 1.
    db.execute("UPDATE audit_events SET seq = -seq - 1 WHERE seq >= ?", [seq])
    db.execute("UPDATE audit_events SET seq = -seq WHERE seq < 0")


def edit_field(db: VaultSql) -> None:
    db.execute("UPDATE audit_events SET target = 'pg-evil' WHERE seq = 150")


def edit_and_rechain(db: VaultSql) -> None:
    edit_field(db)
    _rechain_from(db, 150)


def delete_entry(db: VaultSql) -> None:
    db.execute("DELETE FROM audit_events WHERE seq = 150")


def delete_and_renumber(db: VaultSql) -> None:
    delete_entry(db)
    db.execute("UPDATE audit_events SET seq = seq - 1 WHERE seq > 150")
    _rechain_from(db, 150)


def insert_without_mac(db: VaultSql) -> None:
    _shift_up_from(db, 150)
    _insert_forged(db, 150, None)
    _rechain_from(db, 151)


def insert_with_made_up_mac(db: VaultSql) -> None:
    _shift_up_from(db, 150)
    _insert_forged(db, 150, b"\x5a" * 32)
    _rechain_from(db, 151)


def append_without_mac(db: VaultSql) -> None:
    _insert_forged(db, TRAIL_LENGTH + 1, None)


def append_with_made_up_mac(db: VaultSql) -> None:
    _insert_forged(db, TRAIL_LENGTH + 1, b"\x5a" * 32)


def swap_rows(db: VaultSql) -> None:
    """Entries 150 and 151 trade places, each whole row as it was written."""
    db.execute("UPDATE audit_events SET seq = -1 WHERE seq = 150")
    db.execute("UPDATE audit_events SET seq = 150 WHERE seq = 151")
    db.execute("UPDATE audit_events SET seq = 151 WHERE seq = -1")


def swap_contents_and_rechain(db: VaultSql) -> None:
    """Entries 150 and 151 trade what they say (not their seq); the chain is recomputed."""
    columns = [f for f in _FIELDS if f != "seq"]
    select = f"SELECT {', '.join(columns)} FROM audit_events WHERE seq = ?"  # noqa: S608 - fixed column list
    a, b = (db.one(select, [seq]) for seq in (150, 151))
    assignments = ", ".join(f"{c} = ?" for c in columns)
    db.execute(f"UPDATE audit_events SET {assignments} WHERE seq = 150", [*b])  # noqa: S608 - fixed column list
    db.execute(f"UPDATE audit_events SET {assignments} WHERE seq = 151", [*a])  # noqa: S608 - fixed column list
    _rechain_from(db, 150)


def strip_one_mac(db: VaultSql) -> None:
    db.execute("UPDATE audit_events SET mac = NULL WHERE seq = 150")


def truncate_after_checkpoint(db: VaultSql) -> None:
    db.execute("DELETE FROM audit_events WHERE seq > 200")


def truncate_before_checkpoint(db: VaultSql) -> None:
    db.execute("DELETE FROM audit_events WHERE seq > 150")


def truncate_and_drop_head_note(db: VaultSql) -> None:
    truncate_after_checkpoint(db)
    db.execute("DELETE FROM settings WHERE key = 'audit_head'")


def truncate_and_drop_note_and_checkpoints(db: VaultSql) -> None:
    db.execute("DELETE FROM audit_events WHERE seq > 120")
    db.execute("DELETE FROM audit_checkpoints WHERE seq > 100")
    db.execute("DELETE FROM settings WHERE key = 'audit_head'")


def truncate_and_forge_head_note(db: VaultSql) -> None:
    truncate_after_checkpoint(db)
    note = {"seq": 200, "hash": _hash(db, 200).hex(), "mac": "5a" * 32}
    db.execute("UPDATE settings SET value = ? WHERE key = 'audit_head'", [canonical_json(note)])


def flip_checkpoint_signature(db: VaultSql) -> None:
    (signature,) = db.one("SELECT signature FROM audit_checkpoints WHERE seq = 200")
    flipped = bytes([signature[0] ^ 1]) + bytes(signature[1:])
    db.execute("UPDATE audit_checkpoints SET signature = ? WHERE seq = 200", [flipped])


def change_checkpoint_head(db: VaultSql) -> None:
    db.execute("UPDATE audit_checkpoints SET head = ? WHERE seq = 200", [_hash(db, 199)])


def _head_note(db: VaultSql) -> dict[str, object]:
    (text,) = db.one("SELECT value FROM settings WHERE key = 'audit_head'")
    note: dict[str, object] = json.loads(text)
    return note


def _set_head_note(db: VaultSql, note: dict[str, object]) -> None:
    db.execute("UPDATE settings SET value = ? WHERE key = 'audit_head'", [canonical_json(note)])


def edit_head_note_time(db: VaultSql) -> None:
    """Make the note claim a later time than its entry's (to hide a rollback)."""
    _set_head_note(db, {**_head_note(db), "at": "2099-01-01T00:00:00+00:00"})


def edit_head_note_epoch(db: VaultSql) -> None:
    _set_head_note(db, {**_head_note(db), "epoch": 2})


def change_the_epoch_setting(db: VaultSql) -> None:
    """The epoch a restore raised, put back (or any other value)."""
    db.execute("UPDATE settings SET value = '7' WHERE key = 'epoch'")


def downgrade_head_note(db: VaultSql) -> None:
    """A version-1 note (no time, no epoch) with the version-2 note's MAC."""
    note = _head_note(db)
    _set_head_note(db, {"seq": note["seq"], "hash": note["hash"], "mac": note["mac"]})


def delete_audit_key(db: VaultSql) -> None:
    db.execute("DELETE FROM audit_key")


DB_CASES: list[tuple[Tamper, int, str]] = [
    (edit_field, 150, "does not match its digest"),
    (edit_and_rechain, 150, "MAC does not verify"),
    (delete_entry, 150, "entry 150 is missing"),
    (delete_and_renumber, 150, "MAC does not verify"),
    (insert_without_mac, 150, "carries no MAC"),
    (insert_with_made_up_mac, 150, "MAC does not verify"),
    (append_without_mac, 251, "carries no MAC"),
    (append_with_made_up_mac, 251, "MAC does not verify"),
    (swap_rows, 150, "does not follow the entry before it"),
    (swap_contents_and_rechain, 150, "MAC does not verify"),
    (strip_one_mac, 150, "carries no MAC"),
    (truncate_after_checkpoint, 201, "recorded entries up to 250 (cut off)"),
    (truncate_before_checkpoint, 151, "covers up to entry 200 (cut off)"),
    (truncate_and_drop_head_note, 201, "note of its last entry is missing"),
    (truncate_and_drop_note_and_checkpoints, 121, "note of its last entry is missing"),
    (truncate_and_forge_head_note, 200, "note of its last entry was altered"),
    (flip_checkpoint_signature, 200, "checkpoint at this entry does not verify"),
    (change_checkpoint_head, 200, "checkpoint at this entry does not verify"),
    (edit_head_note_time, 250, "note of its last entry was altered"),
    (edit_head_note_epoch, 250, "note of its last entry was altered"),
    (downgrade_head_note, 250, "note of its last entry was altered"),
    # The vault makes a new audit key when it finds none; the entries' MACs
    # (made with the deleted key) then fail from the first one on.
]


@pytest.mark.parametrize(
    ("tamper", "first_bad", "problem"), DB_CASES, ids=[c[0].__name__ for c in DB_CASES]
)
def test_tampering_with_the_table_is_caught_at_the_first_bad_entry(
    trail_dir: Path, tamper: Tamper, first_bad: int, problem: str, vaults: EngineVaults
) -> None:
    assert verify_db(trail_dir).ok
    with vaults.sql(trail_dir, attacker=True) as db:
        tamper(db)
    report = verify_db(trail_dir)
    assert report.ok is False
    assert report.first_bad_seq == first_bad, report.problem
    assert report.problem is not None and problem in report.problem
    assert report.summary().startswith(f"FAILED at entry {first_bad}: ")


def test_a_changed_epoch_setting_is_caught(
    trail_dir: Path, vaults: EngineVaults, store_engine: StoreEngineName
) -> None:
    with vaults.sql(trail_dir, attacker=True) as db:
        change_the_epoch_setting(db)
    if store_engine == "postgresql":
        # A cluster member stops before it reads anything: its data dir says
        # another epoch than the shared database (T-CL-3).
        with pytest.raises(MemberStoppedError, match="moved to epoch 7"):
            verify_db(trail_dir)
        return
    report = verify_db(trail_dir)
    assert (report.ok, report.first_bad_seq) == (False, 250), report.summary()
    assert report.problem is not None
    assert "written in epoch 1, but the vault says epoch 7" in report.problem


def test_the_untampered_trail_verifies(trail_dir: Path) -> None:
    report = verify_db(trail_dir)
    assert (report.ok, report.entries, report.first_seq, report.last_seq) == (True, 250, 1, 250)
    assert (report.checkpoints, report.signed_through, report.unkeyed) == (2, 200, 0)
    assert report.head_seq == 250 and report.head_at is not None
    assert report.summary().endswith(f"; last MACed entry 250 at {report.head_at}")


def test_a_checkpoint_by_a_certificate_put_in_the_signers_table_is_not_counted(
    trail_dir: Path, vaults: EngineVaults
) -> None:
    # T-AU-13: audit_signers says which certificate a thumbprint is, not whom to
    # trust; only the current certificate and those rotation records link to it sign.
    with Gateway.open(trail_dir, make_context()) as gateway:
        gateway_id = gateway.gateway_id
    key, cert = forged_identity(gateway_id)
    with vaults.sql(trail_dir, attacker=True) as db:
        head, at = _hash(db, 250), "2030-01-01T00:00:00+00:00"
        signature = key.sign(checkpoint_message(gateway_id, 250, head, at, "interval"))
        db.execute("INSERT INTO audit_signers VALUES (?, ?)", [cert.thumbprint, cert.pem.decode()])
        db.execute(
            "INSERT INTO audit_checkpoints (seq, head, at, reason, thumbprint, signature)"
            " VALUES (250, ?, ?, 'interval', ?, ?)",
            [head, at, cert.thumbprint, signature],
        )
        db.execute("UPDATE audit_signers SET cert_pem = 'not a certificate'"
                   " WHERE thumbprint != ?", [cert.thumbprint])  # fmt: skip
    report = verify_db(trail_dir)
    assert report.ok, report.summary()
    assert (report.signed_through, report.checkpoints, report.unvouched) == (200, 2, 1)


def test_a_head_note_from_before_it_bound_time_and_epoch_is_still_read(
    trail_dir: Path, vaults: EngineVaults
) -> None:
    with Gateway.open(trail_dir, make_context()) as gateway:
        key = gateway.audit.mac_key().key
        tail = gateway.store.audit_tail()
    assert tail is not None
    seq, digest = tail
    with vaults.sql(
        trail_dir, attacker=True
    ) as db:  # what gwvault wrote before version 2 of the note
        _set_head_note(
            db, {"seq": seq, "hash": digest.hex(), "mac": head_mac(key, seq, digest).hex()}
        )
    report = verify_db(trail_dir)
    assert report.ok and (report.head_seq, report.head_at) == (250, None), report.summary()
    with Gateway.open(trail_dir, make_context()) as gateway:
        gateway.audit.record("credential.tested", "pg-next")
    report = verify_db(trail_dir)
    assert report.ok and report.head_seq == 251 and report.head_at is not None
    with vaults.sql(trail_dir) as db:
        assert _head_note(db)["v"] == 2


# -- rolling the tail back (T-AU-12) ----------------------------------------------

LATER = datetime.datetime(2031, 6, 1, 12, 0, tzinfo=datetime.UTC)


def _later(days: int) -> RequestContext:
    moment = LATER + datetime.timedelta(days=days)
    return RequestContext(actor="test:alice", channel="cli", clock=fixed_clock(moment))


def roll_back_the_tail(
    vaults: EngineVaults, data_dir: Path, keep: int = TRAIL_LENGTH
) -> tuple[TrailReport, TrailReport]:
    """The finding: save the MACed head note, let 107 entries and a signed
    checkpoint happen, delete them and put the saved note back.  The reports
    of ``audit verify`` before and after."""
    with vaults.sql(data_dir) as db:
        saved = _head_note(db)
    with Gateway.open(data_dir, _later(0)) as gateway:
        build_trail(gateway, TRAIL_LENGTH + 107)
        assert [c.seq for c in gateway.store.audit_checkpoints()] == [100, 200, 300]
        before = AuditLog(gateway).verify()
    with vaults.sql(data_dir, attacker=True) as db:
        db.execute("DELETE FROM audit_events WHERE seq > ?", [keep])
        db.execute("DELETE FROM audit_checkpoints WHERE seq > ?", [keep])
        _set_head_note(db, saved)
    return before, verify_db(data_dir)


def test_rolling_back_the_tail_and_its_head_note_is_caught(
    trail_dir: Path, vaults: EngineVaults, audit_collector: AuditCollector
) -> None:
    # The vault alone cannot tell the put-back copy from the present (the next
    # test); an audit sink's copy, written as each entry committed, can.
    with Gateway.open(trail_dir, _later(0)) as gateway:
        config = webhook_config(audit_collector.url, audit_collector.ca.pem)
        AuditSinkService(gateway).add("siem", config, "block")
    added = TRAIL_LENGTH + 1
    _, after = roll_back_the_tail(vaults, trail_dir, keep=added)
    assert after.ok and after.head_seq == added
    with Gateway.open(trail_dir, make_context()) as gateway:
        report = verify_against(gateway.store, gateway.gateway_id, audit_collector.path)
    assert report.ok is False and report.failed_seq == added + 1
    assert report.sink_last == TRAIL_LENGTH + 107


def test_a_rolled_back_tail_shows_as_its_last_entry_and_signed_time_going_back(
    trail_dir: Path, vaults: EngineVaults
) -> None:
    before, after = roll_back_the_tail(vaults, trail_dir)
    assert before.ok and after.ok, (before.summary(), after.summary())
    assert (before.head_seq, before.signed_through) == (357, 300)
    assert (after.head_seq, after.signed_through) == (250, 200)
    # The note binds its entry's time: the put-back note shows the old one.
    assert before.head_at is not None and after.head_at is not None
    assert before.signed_at is not None and after.signed_at is not None
    assert after.head_at < before.head_at and after.signed_at < before.signed_at
    assert f"signed through entry 200 at {after.signed_at}" in after.summary()
    assert f"last MACed entry 250 at {after.head_at}" in after.summary()
    # New entries chain on from the cut; the last entry number stays behind.
    with Gateway.open(trail_dir, _later(1)) as gateway:
        gateway.audit.record("credential.tested", "pg-after-the-cut")
    again = verify_db(trail_dir)
    assert again.ok and again.head_seq == 251 and again.signed_at == after.signed_at


def test_a_deleted_audit_key_fails_closed_instead_of_being_made_anew(
    trail_dir: Path, vaults: EngineVaults
) -> None:
    # A new key would let a trail rewritten from that point on verify; only a
    # new or just-upgraded vault may make one.
    with vaults.sql(trail_dir, attacker=True) as db:
        delete_audit_key(db)
    with pytest.raises(IntegrityError, match="audit key is missing"):
        verify_db(trail_dir)
    with (
        Gateway.open(trail_dir, make_context()) as gateway,
        pytest.raises(IntegrityError, match="audit key is missing"),
    ):
        gateway.audit.record("credential.tested", "sales")
    with vaults.sql(trail_dir) as db:
        assert db.rows("SELECT count(*) FROM audit_key") == [(0,)]


def test_moving_where_the_audit_key_starts_breaks_its_unwrap(
    trail_dir: Path, vaults: EngineVaults
) -> None:
    with vaults.sql(trail_dir, attacker=True) as db:
        db.execute("UPDATE audit_key SET keyed_from = 251")
    with pytest.raises(IntegrityError, match="audit key does not unwrap"):
        verify_db(trail_dir)


def strip_the_audit_key_and_every_mac(db: VaultSql) -> None:
    """Make the trail look like one written before the chain (a just-upgraded vault)."""
    truncate_and_drop_head_note(db)
    db.execute("UPDATE audit_events SET mac = NULL")
    delete_audit_key(db)
    # A cluster member fails closed before it makes a new key, so an earlier
    # strip may have left the setting.
    db.execute(
        "INSERT INTO settings (key, value) VALUES ('audit_key_pending', '1')"
        " ON CONFLICT (key) DO NOTHING"
    )


def strip_every_key_and_seal(db: VaultSql) -> None:
    """As ``strip_the_audit_key_and_every_mac``, and make the sealed rows look like
    ones from before schema 4: the row seals derive from the audit key, so a new
    key needs them gone too, and the trail's note that they were sealed (T-DB-1)."""
    strip_the_audit_key_and_every_mac(db)
    for table in db.tables_with_column("mac"):
        if table != "audit_events":
            db.execute(f'UPDATE "{table}" SET mac = NULL')  # noqa: S608 - names from the schema
    db.execute("INSERT INTO settings (key, value) VALUES ('rows_unsealed', '1')")
    _forget_that_the_rows_were_sealed_at_init(db)


def _forget_that_the_rows_were_sealed_at_init(db: VaultSql) -> None:
    # With every MAC gone the chain is anyone's to recompute: drop the init
    # entry's note that the vault was made with sealed rows, and re-chain.
    rows = db.rows(
        "SELECT seq, at, actor, channel, action, target, outcome, request_id, details, prev_hash"
        " FROM audit_events ORDER BY seq"
    )
    prev = bytes(rows[0][9])
    for seq, at, actor, channel, action, target, outcome, rid, stored, _ in rows:
        details = stored
        if action == "gateway.initialized":
            note = {k: v for k, v in json.loads(stored).items() if k != "rows_sealed"}
            details = canonical_json(note)
        fields = AuditFields(seq, at, actor, channel, action, target, outcome, rid, details)
        digest = entry_digest(prev, fields)
        db.execute(
            "UPDATE audit_events SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            [details, prev, digest, seq],
        )
        prev = digest


def test_stripping_the_audit_key_and_every_mac_is_caught_by_a_checkpoint(
    trail_dir: Path, vaults: EngineVaults
) -> None:
    with vaults.sql(trail_dir, attacker=True) as db:
        strip_the_audit_key_and_every_mac(db)
    # The rows that decide access are sealed under the audit key: a new key
    # breaks their seals, caught before the trail is even read.
    with pytest.raises(TamperedRowError):
        verify_db(trail_dir)
    with vaults.sql(trail_dir, attacker=True) as db:
        strip_every_key_and_seal(db)
    # Forgetting the seals meant re-chaining from the init entry on: the first
    # signed checkpoint no longer matches, so nothing from entry 1 on is proven.
    report = verify_db(trail_dir)
    assert (report.ok, report.first_bad_seq) == (False, 1), report.summary()


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="documented limit (README, audit Limits): with the audit key, every MAC, every"
    " checkpoint and the head note removed and the vault marked as just upgraded, the trail"
    " is indistinguishable from one written before the chain; only exports kept elsewhere"
    " anchor it",
)
def test_stripping_the_audit_key_macs_and_checkpoints_is_caught(
    trail_dir: Path, vaults: EngineVaults
) -> None:
    with vaults.sql(trail_dir, attacker=True) as db:
        strip_every_key_and_seal(db)
        db.execute("DELETE FROM audit_checkpoints")
    report = verify_db(trail_dir)
    assert report.unkeyed == 200  # what the README tells an admin to look for
    assert report.ok is False


# -- exports ----------------------------------------------------------------------

EditExport = Callable[[Lines], None]


def export_edit(lines: Lines) -> None:
    lines[line_index(lines, "entry", 150)]["target"] = "pg-evil"


def export_edit_and_rechain(lines: Lines) -> None:
    export_edit(lines)
    rechain_export_from(lines, 150)


def export_edit_rechain_and_move_heads(lines: Lines) -> None:
    export_edit_and_rechain(lines)
    for seq in (200, 251):
        checkpoint = lines[line_index(lines, "checkpoint", seq)]
        checkpoint["head"] = lines[line_index(lines, "entry", seq)]["hash"]


def export_delete(lines: Lines) -> None:
    del lines[line_index(lines, "entry", 150)]


def export_insert(lines: Lines) -> None:
    forged = dict(lines[line_index(lines, "entry", 150)], target="pg-evil")
    fields = AuditFields(**{key: forged[key] for key in _FIELDS})  # type: ignore[arg-type]
    forged["hash"] = entry_digest(bytes.fromhex(str(forged["prev"])), fields).hex()
    lines.insert(line_index(lines, "entry", 150), forged)  # a well-chained 150 before the real one


def export_duplicate(lines: Lines) -> None:
    i = line_index(lines, "entry", 150)
    lines.insert(i + 1, dict(lines[i]))


def export_append(lines: Lines) -> None:
    last = lines[line_index(lines, "entry", 251)]
    forged = dict(last, seq=252, prev=last["hash"], action="credential.deleted")
    fields = AuditFields(**{key: forged[key] for key in _FIELDS})  # type: ignore[arg-type]
    forged["hash"] = entry_digest(bytes.fromhex(str(last["hash"])), fields).hex()
    lines.append(forged)


def export_swap(lines: Lines) -> None:
    i, j = line_index(lines, "entry", 150), line_index(lines, "entry", 151)
    lines[i], lines[j] = lines[j], lines[i]


def export_cut_after_checkpoint(lines: Lines) -> None:
    del lines[line_index(lines, "checkpoint", 200) + 1 :]


def export_cut_with_its_checkpoint(lines: Lines) -> None:
    del lines[line_index(lines, "checkpoint", 200) :]


def export_cut_mid_way(lines: Lines) -> None:
    del lines[line_index(lines, "entry", 150) + 1 :]


def export_drop_closing_checkpoint(lines: Lines) -> None:
    del lines[line_index(lines, "checkpoint", 251)]


def _flip_signature(lines: Lines, seq: int) -> None:
    checkpoint = lines[line_index(lines, "checkpoint", seq)]
    checkpoint["signature"] = flipped_signature(checkpoint["signature"])


def export_flip_first_signature(lines: Lines) -> None:
    _flip_signature(lines, 100)


def export_flip_middle_signature(lines: Lines) -> None:
    _flip_signature(lines, 200)


def export_flip_closing_signature(lines: Lines) -> None:
    _flip_signature(lines, 251)


def export_relabel_closing_checkpoint(lines: Lines) -> None:
    lines[line_index(lines, "checkpoint", 251)]["reason"] = "interval"


def _resign_with_a_certificate_of_ones_own(lines: Lines) -> GatewayCertificate:
    """Re-sign the checkpoint at 200 with a key pair of one's own whose
    certificate, naming the gateway, goes into the unsigned header."""
    gateway_id = str(lines[0]["gateway_id"])
    key, cert = forged_identity(gateway_id)
    certificates = lines[0]["certificates"]
    assert isinstance(certificates, list)
    certificates.append(cert.pem.decode())
    checkpoint = lines[line_index(lines, "checkpoint", 200)]
    head, at = bytes.fromhex(str(checkpoint["head"])), str(checkpoint["at"])
    signature = key.sign(checkpoint_message(gateway_id, 200, head, at, "interval"))
    checkpoint["thumbprint"], checkpoint["signature"] = cert.thumbprint, b64url(signature)
    return cert


def export_resign_with_a_header_certificate(lines: Lines) -> None:
    """The finding: a re-chained edit at 150, and the checkpoint after it re-signed
    with a certificate taken from the header."""
    export_edit_rechain_and_move_heads(lines)
    _resign_with_a_certificate_of_ones_own(lines)


def export_forge_a_rotation_to_a_certificate_of_its_own(lines: Lines) -> None:
    """As above, plus a rotation record from the gateway's key to the forger's
    at entry 150, which only the forger's key can sign."""
    export_edit_rechain_and_move_heads(lines)
    forged = _resign_with_a_certificate_of_ones_own(lines)
    gateway_id = str(lines[0]["gateway_id"])
    key, _ = forged_identity(gateway_id)
    entry = lines[line_index(lines, "entry", 150)]
    real = lines[line_index(lines, "checkpoint", 100)]
    message = rotation_message(
        gateway_id, 150, bytes.fromhex(str(entry["hash"])), str(entry["at"]),
        from_thumbprint=str(real["thumbprint"]), to_thumbprint=forged.thumbprint,
    )  # fmt: skip
    signature = b64url(key.sign(message))
    rotation = {"type": "rotation", "seq": 150, "head": entry["hash"], "at": entry["at"],
                "from": real["thumbprint"], "to": forged.thumbprint,
                "from_signature": signature, "to_signature": signature}  # fmt: skip
    lines.insert(line_index(lines, "entry", 150) + 1, rotation)


def export_cut_a_prefix_under_a_prune_checkpoint_of_its_own(lines: Lines) -> None:
    """Entries 1..100 removed behind a "prune" checkpoint the forger signed: no
    audit.pruned entry in the trail records that prune."""
    gateway_id = str(lines[0]["gateway_id"])
    key, cert = forged_identity(gateway_id)
    certificates = lines[0]["certificates"]
    assert isinstance(certificates, list)
    certificates.append(cert.pem.decode())
    head, at = bytes.fromhex(str(lines[line_index(lines, "entry", 100)]["hash"])), "2030-01-01"
    signature = b64url(key.sign(checkpoint_message(gateway_id, 100, head, at, "prune")))
    prune = {"type": "checkpoint", "seq": 100, "head": head.hex(), "at": at, "reason": "prune",
             "thumbprint": cert.thumbprint, "signature": signature}  # fmt: skip
    del lines[1 : line_index(lines, "checkpoint", 100) + 1]
    lines.insert(1, prune)


def export_prune_entry_too_deep_to_parse(lines: Lines) -> None:
    """An audit.pruned entry whose details nest deeper than any JSON parser recurses."""
    entry = lines[line_index(lines, "entry", 150)]
    entry["action"], entry["details"] = "audit.pruned", "[" * 30_000 + "]" * 30_000
    rechain_export_from(lines, 150)


EXPORT_CASES: list[tuple[EditExport, int, str]] = [
    (export_edit, 150, "does not match its digest"),
    # No MACs in an export: a re-chained edit shows at the next checkpoint,
    # and the report names the first entry after the last one that held.
    (export_edit_and_rechain, 101, "entries 101..200 do not match the checkpoint"),
    (export_edit_rechain_and_move_heads, 101, "entries 101..200 do not match the checkpoint"),
    (export_delete, 150, "entry 150 is missing"),
    (export_insert, 150, "entry 150 appears again"),
    (export_duplicate, 150, "entry 150 appears again"),
    (export_append, 252, "entries 252..252 are not covered by a closing checkpoint"),
    (export_swap, 150, "entry 150 is missing (the next entry is 151)"),
    (export_cut_after_checkpoint, 201, "ends at entry 200 at an interval checkpoint"),
    (export_cut_with_its_checkpoint, 101, "entries 101..200 are not covered"),
    (export_cut_mid_way, 101, "entries 101..150 are not covered"),
    (export_drop_closing_checkpoint, 201, "entries 201..251 are not covered"),
    (export_flip_first_signature, 1, "entries 1..100 do not match the checkpoint"),
    (export_flip_middle_signature, 101, "entries 101..200 do not match the checkpoint"),
    (export_flip_closing_signature, 201, "entries 201..251 do not match the checkpoint"),
    (export_relabel_closing_checkpoint, 201, "entries 201..251 do not match the checkpoint"),
    # A certificate in the header verifies nothing by being there (T-AU-13).
    (export_resign_with_a_header_certificate, 101, "entries 101..251 do not match the checkpoint"),
    (export_forge_a_rotation_to_a_certificate_of_its_own, 150, "not signed by both keys"),
    (export_cut_a_prefix_under_a_prune_checkpoint_of_its_own, 100, "no audit.pruned entry"),
    (export_prune_entry_too_deep_to_parse, 101, "entries 101..200 do not match the checkpoint"),
]


@pytest.mark.parametrize(
    ("edit", "first_bad", "problem"), EXPORT_CASES, ids=[c[0].__name__ for c in EXPORT_CASES]
)
def test_tampering_with_an_export_is_caught_at_the_first_bad_entry(
    exported: tuple[Path, GatewayCertificate], edit: EditExport, first_bad: int, problem: str
) -> None:
    path, certificate = exported
    lines = read_lines(path)
    edit(lines)
    write_lines(path, lines)
    _, report = verify_export(path, certificate)
    assert report.ok is False
    assert report.first_bad_seq == first_bad, report.problem
    assert report.problem is not None and problem in report.problem


def test_a_clean_export_verifies(
    exported: tuple[Path, GatewayCertificate], key_type: KeyType
) -> None:
    path, certificate = exported
    header, report = verify_export(path, certificate)
    assert header.gateway_id == certificate.gateway_id and header.exported_by == "test:alice"
    assert certificate.key_type == key_type
    assert (report.ok, report.entries, report.first_seq, report.last_seq) == (True, 251, 1, 251)
    assert (report.checkpoints, report.signed_through) == (3, 251)
    assert report.signed_at is not None  # the export checkpoint's own, signed time
    signed = f"signed through entry 251 at {report.signed_at}"
    assert report.summary() == f"OK: 251 entries (1..251), {signed}"


def test_rewriting_the_export_canonically_changes_nothing(
    exported: tuple[Path, GatewayCertificate],
) -> None:
    path, _ = exported
    original = path.read_bytes()
    write_lines(path, read_lines(path))
    assert path.read_bytes() == original  # so the cases above change only what they edit


def test_an_export_claimed_for_another_gateway_is_refused(
    exported: tuple[Path, GatewayCertificate],
) -> None:
    path, certificate = exported
    lines = read_lines(path)
    lines[0]["gateway_id"] = "00000000-0000-4000-8000-000000000000"
    write_lines(path, lines)
    with pytest.raises(InvalidInputError, match="the export is from gateway 00000000-"):
        verify_export(path, certificate)


@pytest.fixture
def other_certificate(
    vault_templates: dict[KeyType, Path], key_type: KeyType, tmp_path: Path
) -> GatewayCertificate:
    """The certificate of the other template vault: another gateway."""
    other: KeyType = "rsa-3072" if key_type == "ec-p256" else "ec-p256"
    copy = tmp_path / "other"
    shutil.copytree(vault_templates[other], copy)
    with Gateway.open(copy, make_context()) as gateway:
        return gateway.certificate()


def test_another_gateways_certificate_does_not_verify_an_export(
    exported: tuple[Path, GatewayCertificate], other_certificate: GatewayCertificate
) -> None:
    path, certificate = exported
    assert other_certificate.gateway_id != certificate.gateway_id
    with pytest.raises(InvalidInputError, match="the certificate is gateway"):
        verify_export(path, other_certificate)
    # Relabelled as the other gateway's, the chain no longer starts from its genesis.
    lines = read_lines(path)
    lines[0]["gateway_id"] = other_certificate.gateway_id
    write_lines(path, lines)
    _, report = verify_export(path, other_certificate)
    assert (report.ok, report.first_bad_seq) == (False, 1)
