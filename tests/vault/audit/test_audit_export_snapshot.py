"""The export in two steps, as the server makes it (``AuditLog.sign_export`` in a
short write, ``read_export`` from a snapshot): the write lock is free while the
lines are read, the file ends at its own checkpoint whatever was written
meanwhile, and a prune in between is refused rather than exported unverifiable."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from agent_keys.errors import ConflictError, StorageError
from tests.conftest import fixed_clock, make_context
from vault.audit.export import verify_export
from vault.audit.log import AuditLog
from vault.context import RequestContext
from vault.gateway import Gateway

START = datetime.datetime(2030, 1, 1, 9, 0, tzinfo=datetime.UTC)


def _at(day: int) -> RequestContext:
    return RequestContext(
        actor="test:alice", channel="cli", clock=fixed_clock(START.replace(day=day))
    )


def _record(path: Path, count: int, context: RequestContext | None = None) -> None:
    with Gateway.open(path, context or make_context()) as gateway, gateway.store.write():
        for _ in range(count):
            gateway.audit.record("credential.tested", "sales", "ok")


def test_the_lines_are_read_while_another_connection_writes(data_dir: Path, tmp_path: Path) -> None:
    _record(data_dir, 30)
    out, waited = tmp_path / "trail.jsonl", list[float]()

    def write(lines: Iterable[bytes]) -> None:
        # Another connection appends mid-read.  Were the write lock held (as the
        # one-transaction export holds it), it would wait 10 s and then fail.
        started = time.monotonic()
        with Gateway.open(data_dir, make_context("test:bob")) as other:
            other.audit.record("credential.tested", "sales", "ok")
        waited.append(time.monotonic() - started)
        out.write_bytes(b"".join(lines))

    with Gateway.open(data_dir, make_context("user:otto")) as gateway:
        log = AuditLog(gateway)
        signed = log.sign_export()
        log.read_export(signed, write)
        certificate = gateway.certificate()
        newest = gateway.store.audit_tail()
    assert waited[0] < 5
    header, report = verify_export(out, certificate)
    assert report.ok, report.summary()
    assert header.exported_by == "user:otto"
    assert report.last_seq == signed.closing.seq  # closed by its own checkpoint
    assert newest is not None and newest[0] == signed.closing.seq + 1  # bob's: left out
    assert f'"seq":{signed.closing.seq + 1},' not in out.read_text()


def test_a_prune_between_signing_and_reading_is_refused(data_dir: Path) -> None:
    _record(data_dir, 150, _at(2))
    _record(data_dir, 30, _at(20))
    with Gateway.open(data_dir, _at(25)) as gateway:
        log = AuditLog(gateway)
        signed = log.sign_export()
        assert log.prune(START.replace(day=10)).removed > 0
        written: list[Iterable[bytes]] = []
        with pytest.raises(ConflictError, match="pruned during the export"):
            log.read_export(signed, written.append)
    assert written == []


def test_the_lines_are_not_read_inside_a_write(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway, gateway.store.write():
        log = AuditLog(gateway)
        signed = log.sign_export()
        with pytest.raises(StorageError, match="outside the write"):
            log.read_export(signed, list)
