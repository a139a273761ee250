"""SQLite open tests on real files: read-only, and a missing file is never created."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from vault.connectors import dispatch
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.format.data_source import DataSource

ANONYMOUS = ConnectionCredential("anonymous", None, None)


def _open(path: Path) -> ConnectionTestResult:
    return dispatch.test_connection(DataSource("sqlite", str(path)), ANONYMOUS, timeout=2.0)


def _make_database(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, amount REAL)")
    connection.close()


def test_real_database_opens(tmp_path: Path) -> None:
    path = tmp_path / "sales.db"
    _make_database(path)
    before = path.read_bytes()
    result = _open(path)
    assert result.ok, result.message
    assert result.message.startswith("ok: opened SQLite ")
    assert "with 1 schema objects" in result.message
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", ["my sales.db", "odd?mode=rwc.db", "hash#1.db", "pct%20.db"])
def test_awkward_file_names_are_quoted_into_the_uri(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    _make_database(path)
    result = _open(path)
    assert result.ok, result.message


def test_non_database_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, just some text that is long enough to have a header\n" * 10)
    result = _open(path)
    assert not result.ok
    assert "file is not a database" in result.message


@pytest.mark.parametrize("name", ["missing.db", "missing.db?mode=rwc", "missing.db#x"])
def test_missing_file_fails_and_is_not_created(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    result = _open(path)
    assert not result.ok
    assert result.message == f"cannot open {path}: No such file or directory"
    assert list(tmp_path.iterdir()) == []


def test_directory_fails(tmp_path: Path) -> None:
    result = _open(tmp_path)
    assert result == ConnectionTestResult(False, f"cannot open {tmp_path}: not a regular file")


def test_fifo_fails_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    result = _open(fifo)
    assert not result.ok
    assert result.message.endswith("not a regular file")


def test_symlink_to_a_database_opens(tmp_path: Path) -> None:
    _make_database(tmp_path / "real.db")
    (tmp_path / "link.db").symlink_to(tmp_path / "real.db")
    assert _open(tmp_path / "link.db").ok
