"""Audit sinks against a real HTTPS collector: every entry leaves as it commits.

A ``block`` sink that cannot take a change's entries fails the change, which
changes nothing; a ``buffer`` sink catches up in order after an outage; and the
collector's file, checked with ``verify_against``, catches a rolled-back tail
that the vault's own check cannot (T-AU-12).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.errors import InvalidInputError, NotFoundError
from agent_keys.secret import Secret
from tests.audit_collector import AuditCollector
from tests.conftest import CANARY, make_context
from tests.store_engines import EngineVaults
from vault.access.row_seal import TamperedRowError
from vault.audit.log import AuditLog
from vault.audit.sinks.against import verify_against
from vault.audit.sinks.delivery import LEASE, deliver_buffered
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.registry import AuditSinkService
from vault.audit.sinks.standing import sink_lags
from vault.cluster.lease import LeaseLostError, acquire
from vault.context import RequestContext
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.notify.sink_config import webhook_config

pytestmark = pytest.mark.contract


def _add_sink(data_dir: Path, collector: AuditCollector, policy: str, name: str = "siem") -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        config = webhook_config(collector.url, collector.ca.pem)
        AuditSinkService(gateway).add(name, config, policy)


def _put(data_dir: Path, name: str, secret: str = "pw") -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).put(
            name,
            DataSource("postgresql", "db.internal:5432", "sales"),
            CredentialPayload("basic", "alice", Secret.from_text(secret)),
        )


def _local_seqs(data_dir: Path, after: int) -> list[int]:
    with Gateway.open(data_dir, make_context()) as gateway:
        return [e.seq for e in gateway.store.audit_entries(after_seq=after)]


def _tail(data_dir: Path) -> int:
    with Gateway.open(data_dir, make_context()) as gateway:
        tail = gateway.store.audit_tail()
        assert tail is not None
        return tail[0]


def test_a_block_sink_receives_every_entry_in_order_and_the_copy_matches(
    data_dir: Path, audit_collector: AuditCollector
) -> None:
    before = _tail(data_dir)
    _add_sink(data_dir, audit_collector, "block")
    for name in ("sales", "hr", "ops"):
        _put(data_dir, name, CANARY)
    with Gateway.open(data_dir, make_context()) as gateway:
        with gateway.store.write():  # many entries, one commit, one send
            for n in range(120):
                gateway.audit.record("credential.tested", "sales", n=n)
        report = verify_against(gateway.store, gateway.gateway_id, audit_collector.path)
        assert AuditLog(gateway).verify().ok
    assert audit_collector.entry_seqs() == _local_seqs(data_dir, before)
    assert report.ok, report.summary()
    assert report.compared == len(audit_collector.entry_seqs()) and not report.notes
    records = audit_collector.records()
    assert records[0]["action"] == "audit.sink-added"
    assert all(r["gateway_id"] == records[0]["gateway_id"] for r in records)
    # The interval checkpoint signed in that commit came with it, after its entry.
    checkpoints = [r for r in records if r["type"] == "checkpoint"]
    assert [c["reason"] for c in checkpoints] == ["interval"] and report.checkpoints == 1
    kinds = [r["type"] for r in records]
    signed = [r["type"] == "entry" and r["seq"] == checkpoints[0]["seq"] for r in records]
    assert kinds[signed.index(True) + 1] == "checkpoint"
    # Never a secret: the records are the trail's fields.
    assert CANARY.encode() not in audit_collector.path.read_bytes()


def test_with_a_block_sink_stopped_a_put_fails_and_changes_nothing(
    data_dir: Path, audit_collector: AuditCollector
) -> None:
    _add_sink(data_dir, audit_collector, "block")
    _put(data_dir, "sales")
    tail, received = _tail(data_dir), audit_collector.entry_seqs()
    audit_collector.stop()
    with pytest.raises(AuditSinkUnavailableError, match=r"siem .*nothing was changed"):
        _put(data_dir, "hr")
    with Gateway.open(data_dir, make_context()) as gateway, pytest.raises(NotFoundError):
        CredentialService(gateway).get("hr")
    assert _tail(data_dir) == tail and audit_collector.entry_seqs() == received
    with Gateway.open(data_dir, make_context()) as gateway:  # the outage shows, nothing else
        (lag,) = sink_lags(gateway)
        assert lag.failing_since is not None and "cannot reach" in (lag.last_error or "")
        assert lag.behind == 0
    # A refusing collector (HTTP 503) is the same as a stopped one.
    audit_collector.start()
    audit_collector.answers.append(503)
    with pytest.raises(AuditSinkUnavailableError, match="HTTP 503"):
        _put(data_dir, "hr")
    assert _tail(data_dir) == tail
    _put(data_dir, "hr")  # back: the change goes through, and is sent
    assert audit_collector.entry_seqs()[-1] == _tail(data_dir)
    with Gateway.open(data_dir, make_context()) as gateway:
        (lag,) = sink_lags(gateway)
        assert (lag.failing_since, lag.last_error) == (None, None)


def test_a_stopped_block_sink_can_still_be_removed(
    data_dir: Path, audit_collector: AuditCollector
) -> None:
    _add_sink(data_dir, audit_collector, "block")
    audit_collector.stop()
    with Gateway.open(data_dir, make_context()) as gateway:
        AuditSinkService(gateway).remove("siem")
        assert sink_lags(gateway) == []
    _put(data_dir, "sales")


def test_a_buffer_sink_stopped_and_restarted_receives_every_entry_in_order(
    data_dir: Path, audit_collector: AuditCollector
) -> None:
    before = _tail(data_dir)
    _add_sink(data_dir, audit_collector, "buffer")
    with Gateway.open(data_dir, make_context()) as gateway:
        assert deliver_buffered(gateway).sent == {"siem": 1}
    audit_collector.stop()
    for name in ("sales", "hr", "ops"):
        _put(data_dir, name)  # the outage does not stop changes
    with Gateway.open(data_dir, make_context()) as gateway:
        report = deliver_buffered(gateway)
        assert "siem" in report.failing and not report.sent
        (lag,) = sink_lags(gateway)
        assert lag.behind == _tail(data_dir) - before - 1 and lag.failing_since is not None
    audit_collector.start()
    with Gateway.open(data_dir, make_context()) as gateway:
        assert deliver_buffered(gateway).sent == {"siem": lag.behind}
        (lag,) = sink_lags(gateway)
        assert (lag.behind, lag.failing_since, lag.last_error) == (0, None, None)
        assert verify_against(gateway.store, gateway.gateway_id, audit_collector.path).ok
    assert audit_collector.entry_seqs() == _local_seqs(data_dir, before)


def test_a_rolled_back_tail_is_caught_against_the_sinks_copy(
    data_dir: Path,
    copy_vault: Callable[[Path, Path], Path],
    audit_collector: AuditCollector,
    tmp_path: Path,
) -> None:
    _add_sink(data_dir, audit_collector, "block")
    _put(data_dir, "sales")
    # The copy an attacker keeps, then puts back in place of the vault.
    rolled_back = copy_vault(data_dir, tmp_path / "earlier")
    _put(data_dir, "sales", "rotated")
    _put(data_dir, "hr")
    last = _tail(data_dir)
    with Gateway.open(rolled_back, make_context()) as gateway:
        assert AuditLog(gateway).verify().ok  # the vault alone cannot tell
        cut = verify_against(gateway.store, gateway.gateway_id, audit_collector.path)
    assert not cut.ok and cut.sink_last == last
    assert "cut off or rolled back" in (cut.problem or "")
    # Written on from the rolled-back state: the sink now holds two lives.
    _put(rolled_back, "ops")
    with Gateway.open(rolled_back, make_context()) as gateway:
        forked = verify_against(gateway.store, gateway.gateway_id, audit_collector.path)
    assert not forked.ok and forked.failed_seq == cut.failed_seq
    assert "two different entries" in (forked.problem or "")


def test_sink_rows_changed_without_gwvault_fail_every_commit_closed(
    data_dir: Path, vaults: EngineVaults, audit_collector: AuditCollector
) -> None:
    _add_sink(data_dir, audit_collector, "block")
    with vaults.sql(data_dir, attacker=True) as db:
        db.execute("UPDATE audit_sinks SET policy = 'buffer'")
    with pytest.raises(TamperedRowError):
        _put(data_dir, "sales")
    with vaults.sql(data_dir, attacker=True) as db:
        db.execute("UPDATE audit_sinks SET policy = 'block'")
    _put(data_dir, "sales")
    with vaults.sql(data_dir, attacker=True) as db:
        db.execute("DELETE FROM audit_sink_places")
        db.execute("DELETE FROM audit_sinks")  # silence the sink
    with pytest.raises(TamperedRowError):
        _put(data_dir, "hr")


def test_a_place_moved_on_shows_as_a_gap_in_the_sinks_copy(
    data_dir: Path, vaults: EngineVaults, audit_collector: AuditCollector
) -> None:
    _add_sink(data_dir, audit_collector, "buffer")
    with Gateway.open(data_dir, make_context()) as gateway:
        deliver_buffered(gateway)
    _put(data_dir, "sales")
    skipped = _tail(data_dir)
    with vaults.sql(data_dir, attacker=True) as db:
        db.execute("UPDATE audit_sink_places SET through_seq = ?", [skipped])
    _put(data_dir, "hr")
    with Gateway.open(data_dir, make_context()) as gateway:
        deliver_buffered(gateway)
        report = verify_against(gateway.store, gateway.gateway_id, audit_collector.path)
    assert report.ok and any("lacks entries" in note for note in report.notes), report.notes


@pytest.mark.sqlite_only(reason="the collector's file is the input; the engine plays no part")
def test_a_copy_of_other_gateways_and_programs_is_read_and_a_malformed_one_refused(
    data_dir: Path, audit_collector: AuditCollector, tmp_path: Path
) -> None:
    _add_sink(data_dir, audit_collector, "block")
    _put(data_dir, "sales")
    mixed = tmp_path / "mixed.log"
    own = audit_collector.path.read_bytes()
    start = own.index(b'"gateway_id":"') + len(b'"gateway_id":"')
    other = own.replace(own[start : start + 8], b"00000000")
    mixed.write_bytes(b"Dec  6 13:00:00 host sshd[1]: Accepted publickey\n" + other + b"\n" + own)
    with Gateway.open(data_dir, make_context()) as gateway:
        report = verify_against(gateway.store, gateway.gateway_id, mixed)
        assert report.ok and report.other_lines == 1 and report.other_gateways > 0
        for bad in (
            b'{"type":"entry","gateway_id":"' + gateway.gateway_id.encode() + b'","seq":1}\n',
            b'{"type":"entry","gateway_id":1}\n',
            b"{not json\n",
            b"{" + b" " * 80_000 + b"}\n",
            b'{"a":1,"a":2}\n',
        ):
            hostile = tmp_path / "hostile.jsonl"
            hostile.write_bytes(own + bad)
            with pytest.raises(InvalidInputError):
                verify_against(gateway.store, gateway.gateway_id, hostile)
        with pytest.raises(InvalidInputError, match="cannot read"):
            verify_against(gateway.store, gateway.gateway_id, tmp_path / "missing")
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        for special in (fifo, Path("/dev/urandom"), tmp_path):
            with pytest.raises(InvalidInputError, match="not a regular file"):
                verify_against(gateway.store, gateway.gateway_id, special)


@pytest.mark.sqlite_only(reason="a cluster's own: it asks for its PostgreSQL member itself")
def test_in_a_cluster_one_member_at_a_time_sends_the_buffer_sinks(
    member_dir: Path, audit_collector: AuditCollector
) -> None:
    _add_sink(member_dir, audit_collector, "buffer")
    with Gateway.open(member_dir, make_context()) as gateway:
        assert gateway.member_id is not None
        acquire(gateway.store, LEASE, "another-member", 60_000)
        with pytest.raises(LeaseLostError):
            deliver_buffered(gateway)
        assert audit_collector.entry_seqs() == []
        with gateway.store.write():
            gateway.store.execute("UPDATE leases SET expires_ms = 0 WHERE name = ?", [LEASE])
        assert deliver_buffered(gateway).sent == {"siem": 1}
        (entry,) = [r for r in audit_collector.records() if r["type"] == "entry"]
        assert f'"member":"{gateway.member_id}"' in entry["details"]


def test_a_prune_keeps_what_a_buffer_sink_was_not_sent_and_a_pruned_add_stands(
    data_dir: Path, audit_collector: AuditCollector
) -> None:
    _add_sink(data_dir, audit_collector, "buffer")
    with Gateway.open(data_dir, make_context()) as gateway:
        deliver_buffered(gateway)
    audit_collector.stop()
    first_unsent = _tail(data_dir) + 1
    _put(data_dir, "sales")
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    context = RequestContext(actor="test:alice", channel="cli", clock=lambda: later)
    with Gateway.open(data_dir, context) as gateway:
        AuditLog(gateway).prune(later)
    assert _local_seqs(data_dir, 0)[0] == first_unsent  # the sink's queue is kept
    audit_collector.start()
    with Gateway.open(data_dir, make_context()) as gateway:
        # The add's entry is pruned, the sink stands, and gets what it missed.
        assert deliver_buffered(gateway).sent["siem"] >= 2
        assert verify_against(gateway.store, gateway.gateway_id, audit_collector.path).ok
