"""Trails to tamper with, shared by the audit tests: build one, reach into its
database as a file writer would, export it and edit the export's lines."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from tests.conftest import make_context
from vault.audit.log import AuditLog
from vault.audit.verify import TrailReport
from vault.data_dir import DB_FILE
from vault.format.audit_chain import canonical_json
from vault.gateway import Gateway

TRAIL_LENGTH = 250
"""The tamper matrix's trail: interval checkpoints lie at 100 and 200."""

Lines = list[dict[str, object]]


def build_trail(gateway: Gateway, length: int = TRAIL_LENGTH) -> None:
    """Append cheap, distinct entries (each names its own seq) up to ``length``."""
    tail = gateway.store.audit_tail()
    assert tail is not None
    with gateway.store.write():
        for seq in range(tail[0] + 1, length + 1):
            assert gateway.audit.record("credential.tested", f"pg-{seq}", n=seq) == seq


def verify_db(data_dir: Path) -> TrailReport:
    with Gateway.open(data_dir, make_context()) as gateway:
        return AuditLog(gateway).verify()


@contextmanager
def tampering(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The database with its append-only triggers dropped, committed on exit."""
    with closing(sqlite3.connect(data_dir / DB_FILE)) as db:
        triggers = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for (name,) in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        yield db
        db.commit()


def write_export(gateway: Gateway, path: Path) -> None:
    def write(lines: Iterator[bytes] | object) -> None:
        assert isinstance(lines, Iterator)
        path.write_bytes(b"".join(lines))

    AuditLog(gateway).export(write)


def read_lines(path: Path) -> Lines:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def write_lines(path: Path, lines: Lines) -> None:
    path.write_bytes(b"".join(canonical_json(line).encode() + b"\n" for line in lines))


def line_index(lines: Lines, kind: str, seq: int) -> int:
    [i] = [i for i, line in enumerate(lines) if line["type"] == kind and line["seq"] == seq]
    return i
