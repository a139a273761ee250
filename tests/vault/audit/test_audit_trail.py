"""The audit trail across the vault's life: MACs, checkpoints, upgrades, rotation,
restore and retention all leave a trail that verifies, and a broken audit key
stops changes instead of letting them go unrecorded."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_keys.errors import IntegrityError, InvalidInputError
from agent_keys.gateway_identity import generate_gateway_identity
from agent_keys.randomness import system_random
from agent_keys.secret import Secret
from tests.conftest import fixed_clock, make_context
from tests.store_engines import EngineVaults
from tests.vault.store.old_schemas import copy_schema_3_vault, rewind_schema
from tests.vault_sql import ChangeRefusedError
from vault.audit.export import verify_export
from vault.audit.log import AuditLog, AuditQuery
from vault.audit.verify import TrailReport
from vault.context import RequestContext
from vault.credentials import CredentialService
from vault.format.audit_chain import (
    CHECKPOINT_INTERVAL,
    checkpoint_message,
)
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.keys.certificates import CertificateService
from vault.keys.keystore_binding import KeystoreSpec, no_pin
from vault.keys.recovery import RecoveryService
from vault.keys.relocation import export_bundle, restore_vault
from vault.keys.rotation import KeyRotation

pytestmark = pytest.mark.contract

# After the template vault was made, so its first entries are the oldest.
START = datetime.datetime(2030, 1, 1, 9, 0, tzinfo=datetime.UTC)


def _at(day: int) -> RequestContext:
    return RequestContext(
        actor="test:alice", channel="cli", clock=fixed_clock(START.replace(day=day))
    )


def _verify(path: Path) -> TrailReport:
    with Gateway.open(path, make_context()) as gateway:
        return AuditLog(gateway).verify()


def _record(path: Path, count: int, context: RequestContext | None = None) -> None:
    with Gateway.open(path, context or make_context()) as gateway, gateway.store.write():
        for _ in range(count):
            gateway.audit.record("credential.tested", "sales", "ok")


def _put(gateway: Gateway, name: str, password: str = "pw") -> None:
    payload = CredentialPayload("basic", "u", Secret.from_text(password))
    CredentialService(gateway).put(name, DataSource("mysql", "db.internal"), payload)


def _count(vaults: EngineVaults, path: Path) -> int:
    (found,) = _rows(vaults, path, "SELECT count(*) FROM audit_events")[0]
    assert isinstance(found, int)
    return found


def _rows(vaults: EngineVaults, path: Path, sql: str) -> list[tuple[object, ...]]:
    with vaults.sql(path) as db:
        return db.rows(sql)


@pytest.fixture
def opened(data_dir: Path) -> Iterator[Gateway]:
    with Gateway.open(data_dir, make_context()) as gateway:
        yield gateway


def test_a_new_vault_macs_every_entry_and_signs_every_hundredth(
    data_dir: Path, vaults: EngineVaults
) -> None:
    initial = _count(vaults, data_dir)  # the vault's creation
    _record(data_dir, 2 * CHECKPOINT_INTERVAL + 20 - initial)
    report = _verify(data_dir)
    assert report.ok, report.summary()
    assert (report.first_seq, report.unkeyed) == (1, 0)
    assert report.entries == report.last_seq == 2 * CHECKPOINT_INTERVAL + 20
    checkpoints = _rows(vaults, data_dir, "SELECT seq, reason FROM audit_checkpoints ORDER BY seq")
    assert checkpoints == [(100, "interval"), (200, "interval")]
    assert report.signed_through == 200 and report.checkpoints == 2
    assert _rows(vaults, data_dir, "SELECT count(*) FROM audit_events WHERE mac IS NULL") == [(0,)]


def test_only_unlock_failures_may_go_without_a_mac(opened: Gateway) -> None:
    with pytest.raises(ValueError, match="must be recorded with a MAC"):
        opened.audit.record_unkeyed("credential.deleted", "sales", "ok")
    with pytest.raises(InvalidInputError):
        RecoveryService(opened).open(Secret.from_text("not the recovery key at all"))
    failed = AuditLog(opened).find(AuditQuery(action="recovery-key.failed"))
    assert len(failed) == 1 and failed[0].mac is None and failed[0].outcome == "refused"
    report = AuditLog(opened).verify()
    assert report.ok and report.unkeyed == 1, report.summary()


def test_an_unkeyed_failure_is_sealed_in_place_by_the_next_entry(
    data_dir: Path, vaults: EngineVaults
) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        failure = gateway.audit.record_unkeyed("vault.unlock-failed", gateway.gateway_id, "failed")
        _put(gateway, "sales")
    with vaults.sql(data_dir, attacker=True) as db:
        db.execute("UPDATE audit_events SET outcome = 'ok' WHERE action = 'vault.unlock-failed'")
    report = _verify(data_dir)
    assert not report.ok and report.first_bad_seq == failure  # edited in place: digest breaks


def test_an_altered_audit_key_stops_changes_instead_of_leaving_them_unrecorded(
    data_dir: Path, vaults: EngineVaults
) -> None:
    with vaults.sql(data_dir) as db:
        (wrapped,) = db.one("SELECT wrapped_key FROM audit_key")
        db.execute("UPDATE audit_key SET wrapped_key = ?", [bytes([wrapped[0] ^ 1]) + wrapped[1:]])
    before = _rows(vaults, data_dir, "SELECT count(*) FROM audit_events")
    with Gateway.open(data_dir, make_context()) as gateway:
        with pytest.raises(IntegrityError, match="audit key does not unwrap"):
            _put(gateway, "sales")
        with pytest.raises(IntegrityError, match="audit key does not unwrap"):
            AuditLog(gateway).verify()
    assert _rows(vaults, data_dir, "SELECT count(*) FROM credentials") == [(0,)]
    assert _rows(vaults, data_dir, "SELECT count(*) FROM audit_events") == before


def test_moving_the_audit_keys_first_entry_breaks_its_unwrap(
    data_dir: Path, vaults: EngineVaults
) -> None:
    # keyed_from is bound into the wrap: moving it (to pass forged unkeyed
    # entries off as older than the key) makes the key unusable, which is loud.
    with vaults.sql(data_dir) as db:
        db.execute("UPDATE audit_key SET keyed_from = 50")
    with (
        Gateway.open(data_dir, make_context()) as gateway,
        pytest.raises(IntegrityError, match="audit key does not unwrap"),
    ):
        AuditLog(gateway).verify()


@pytest.mark.sqlite_only("rewinds the SQLite schema; a PostgreSQL vault starts at schema 6")
def test_an_upgraded_vault_chains_its_old_entries_and_keys_the_new_ones(
    data_dir: Path, vaults: EngineVaults
) -> None:
    _record(data_dir, 5)
    old_entries = _count(vaults, data_dir)
    with Gateway.open(data_dir, make_context()) as gateway:
        master_key = gateway.master_key
    rewind_schema(data_dir / "vault.db", 2, master_key)
    with Gateway.open(data_dir, make_context()) as gateway:
        _put(gateway, "sales")
        report = AuditLog(gateway).verify()
    assert report.ok, report.summary()
    # New: the put, and before it the one-time sealing of the rows schema 4 seals.
    assert report.unkeyed == old_entries and report.entries == old_entries + 2
    assert _rows(vaults, data_dir, "SELECT keyed_from FROM audit_key") == [(old_entries + 1,)]
    new = _rows(vaults, data_dir, f"SELECT action FROM audit_events WHERE seq > {old_entries}")  # noqa: S608
    assert sorted(new) == [("credential.created",), ("integrity.rows-sealed",)]


@pytest.mark.sqlite_only("the vault that schema-3 gwvault made is a SQLite file")
def test_a_schema_3_vault_upgrades_reads_its_old_head_note_and_signs_rotations(
    tmp_path: Path, vaults: EngineVaults
) -> None:
    data_dir = copy_schema_3_vault(tmp_path / "data")  # made by gwvault of schema 3
    before = int(str(_rows(vaults, data_dir, "SELECT max(seq) FROM audit_events")[0][0]))
    # Opening upgrades it; the first unlocked look seals its rows, recorded
    # after its version-1 head note (which the append checked).
    report = _verify(data_dir)
    assert report.ok and report.head_seq == before + 1, report.summary()
    assert _rows(vaults, data_dir, f"SELECT action FROM audit_events WHERE seq > {before}") == [  # noqa: S608
        ("integrity.rows-sealed",)
    ]
    assert _rows(vaults, data_dir, "SELECT count(*) FROM audit_rotations") == [(0,)]
    with Gateway.open(data_dir, make_context()) as gateway:
        CertificateService(gateway).rotate()
    report = _verify(data_dir)
    assert report.ok and report.rotations == 1, report.summary()
    assert report.head_seq is not None and report.head_seq > before
    assert report.head_at is not None


def test_rotating_and_retiring_every_key_keeps_the_trail_verifiable(
    data_dir: Path, recovery_key: Secret, vaults: EngineVaults
) -> None:
    _record(data_dir, CHECKPOINT_INTERVAL)  # a checkpoint signed with the first key pair
    with Gateway.open(data_dir, make_context()) as gateway:
        _put(gateway, "sales")
        gmk_before = _rows(vaults, data_dir, "SELECT gmk_version FROM audit_key")
        certificates = CertificateService(gateway)
        old_thumbprint = gateway.certificate().thumbprint
        certificates.rotate()
        KeyRotation(gateway).rotate(recovery_key)
    _record(data_dir, CHECKPOINT_INTERVAL)  # a checkpoint signed with the new key pair
    with Gateway.open(data_dir, make_context()) as gateway:
        old_version = next(
            v["version"] for v in CertificateService(gateway).versions()
            if v["thumbprint"] == old_thumbprint
        )  # fmt: skip
        CertificateService(gateway).retire(old_version)
        report = AuditLog(gateway).verify()
        export = data_dir.parent / "trail.jsonl"
        AuditLog(gateway).export(lambda lines: export.write_bytes(b"".join(lines)))
        certificate = gateway.certificate()
    assert report.ok, report.summary()
    assert (report.rotations, report.unvouched) == (1, 0)  # the old key's checkpoint counts
    assert _rows(vaults, data_dir, "SELECT gmk_version FROM audit_key") != gmk_before
    signers = {
        row[0] for row in _rows(vaults, data_dir, "SELECT thumbprint FROM audit_checkpoints")
    }
    assert old_thumbprint in signers and certificate.thumbprint in signers
    rewrapped = _rows(
        vaults, data_dir, "SELECT details FROM audit_events WHERE action = 'credentials.rewrapped'"
    )
    assert len(rewrapped) == 1 and json.loads(str(rewrapped[0][0]))["count"] == 1
    header, exported = verify_export(export, certificate)
    assert exported.ok and exported.signed_through == exported.last_seq, exported.summary()
    assert header.gateway_id == certificate.gateway_id


def test_a_restored_gateway_continues_the_same_trail(
    data_dir: Path, recovery_key: Secret, tmp_path: Path, vaults: EngineVaults
) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        _put(gateway, "sales")
        bundle = export_bundle(gateway, recovery_key)
        exported = AuditLog(gateway).find(AuditQuery(action="recovery.exported"))[0].seq
    restored, _ = restore_vault(
        tmp_path / "new", bundle, recovery_key, make_context(),
        keystore=KeystoreSpec("file"), pin=no_pin,
    )  # fmt: skip
    with restored:
        report = AuditLog(restored).verify()
        latest = AuditLog(restored).find(AuditQuery(action="gateway.restored"))[0]
    assert report.ok, report.summary()
    assert latest.action == "gateway.restored" and latest.mac is not None
    # The bundle holds the trail up to its own export; the restore continues it
    # (a cluster's restore first records forgetting the old members).
    same = f"SELECT seq, hash FROM audit_events WHERE seq < {exported} ORDER BY seq"  # noqa: S608
    before, after = _rows(vaults, data_dir, same), _rows(vaults, tmp_path / "new", same)
    assert len(before) == exported - 1 and after == before and latest.seq >= exported


def test_pruning_leaves_a_signed_checkpoint_and_is_itself_recorded(
    data_dir: Path, vaults: EngineVaults
) -> None:
    initial = _count(vaults, data_dir)
    _record(data_dir, 150, _at(2))
    _record(data_dir, 30, _at(20))
    with Gateway.open(data_dir, _at(25)) as gateway:
        result = AuditLog(gateway).prune(START.replace(day=10))
        report = AuditLog(gateway).verify()
        pruned = AuditLog(gateway).find(AuditQuery(action="audit.pruned"))
        export = data_dir.parent / "trail.jsonl"
        AuditLog(gateway).export(lambda lines: export.write_bytes(b"".join(lines)))
        certificate, member = gateway.certificate(), gateway.member_id
    old = initial + 150
    assert (result.through_seq, result.removed) == (old, old)
    assert result.checkpoint is not None and result.checkpoint.reason == "prune"
    assert report.ok and report.first_seq == old + 1, report.summary()
    # A cluster's entries also name the member that wrote them.
    by = {"member": member} if member is not None else {}
    assert len(pruned) == 1 and json.loads(pruned[0].details) == {
        "before": "2030-01-10T09:00:00+00:00",
        "removed": old,
        "through_seq": old,
        **by,
    }
    assert verify_export(export, certificate)[1].ok
    # The database itself refuses to lose entries no prune checkpoint covers.
    with pytest.raises(ChangeRefusedError), vaults.sql(data_dir) as db:
        db.execute("DELETE FROM audit_events WHERE seq = ?", [old + 2])


def test_pruning_refuses_a_time_in_the_future_and_removes_nothing(
    data_dir: Path, vaults: EngineVaults
) -> None:
    with Gateway.open(data_dir, _at(5)) as gateway:
        with pytest.raises(InvalidInputError, match="future"):
            AuditLog(gateway).prune(START.replace(day=6))
        nothing = AuditLog(gateway).prune(START.replace(year=2020))
    assert (nothing.removed, nothing.checkpoint) == (0, None)
    assert _rows(vaults, data_dir, "SELECT min(seq) FROM audit_events") == [(1,)]


def test_chained_entries_cannot_be_edited_through_sql(data_dir: Path, vaults: EngineVaults) -> None:
    with pytest.raises(ChangeRefusedError), vaults.sql(data_dir) as db:
        db.execute("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 1")


def test_a_credential_timeline_lists_its_events_and_not_a_users_of_the_same_name(
    opened: Gateway,
) -> None:
    _put(opened, "sales")
    opened.audit.record("user.added", "sales", role="auditor")
    CredentialService(opened).delete("sales")
    timeline = AuditLog(opened).find(AuditQuery.parse(credential="sales"))
    assert [entry.action for entry in timeline] == ["credential.deleted", "credential.created"]


def test_a_prefix_cut_off_under_a_forged_prune_checkpoint_is_caught(
    data_dir: Path, vaults: EngineVaults
) -> None:
    # A file writer with a key pair of their own, in a certificate naming this
    # gateway, signs a "prune" checkpoint and deletes the oldest entries: the
    # trail's own (MACed) audit.pruned entries do not record that prune.
    _record(data_dir, 30)
    with Gateway.open(data_dir, make_context()) as gateway:
        gateway_id = gateway.gateway_id
        (head,) = _rows(vaults, data_dir, "SELECT hash FROM audit_events WHERE seq = 10")[0]
    assert isinstance(head, bytes)
    key, cert = generate_gateway_identity(
        "forger", gateway_id, "ec-p256", datetime.datetime.now(datetime.UTC), system_random
    )
    at = "2030-01-01T00:00:00+00:00"
    signature = key.sign(checkpoint_message(gateway_id, 10, head, at, "prune"))
    with vaults.sql(data_dir) as db:
        db.execute("INSERT INTO audit_signers VALUES (?, ?)", [cert.thumbprint, cert.pem.decode()])
        db.execute(
            "INSERT INTO audit_checkpoints (seq, head, at, reason, thumbprint, signature)"
            " VALUES (10, ?, ?, 'prune', ?, ?)",
            [head, at, cert.thumbprint, signature],
        )
        db.execute("DELETE FROM audit_events WHERE seq <= 10")
    report = _verify(data_dir)
    assert not report.ok and report.first_bad_seq == 10, report.summary()
    assert "no audit.pruned entry" in (report.problem or "")
