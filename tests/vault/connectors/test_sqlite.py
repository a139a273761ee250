"""SQLite tests on real files: only under allowed directories, never the vault's own
files, no link followed, nothing written, and no FIFO ever blocks (threat T-CN-4)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from vault.connectors import dispatch, sqlite
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.connectors.destinations import DestinationPolicy
from vault.format.data_source import DataSource

ANONYMOUS = ConnectionCredential("anonymous", None, None)


def _open(path: Path, policy: DestinationPolicy) -> ConnectionTestResult:
    source = DataSource("sqlite", str(path), tls="disable")
    return dispatch.test_connection(source, ANONYMOUS, timeout=2.0, policy=policy)


def _open_in_thread(path: Path, policy: DestinationPolicy) -> ConnectionTestResult | None:
    """The test's result, or None if it was still blocked after five seconds."""
    results: list[ConnectionTestResult] = []
    worker = threading.Thread(target=lambda: results.append(_open(path, policy)), daemon=True)
    worker.start()
    worker.join(timeout=5)
    return results[0] if results else None


def _make_database(path: Path, *, wal: bool = False) -> None:
    with sqlite3.connect(path) as connection:
        if wal:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, amount REAL)")
    connection.close()


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    directory = tmp_path / "allowed"
    directory.mkdir()
    return directory


@pytest.fixture
def policy(allowed: Path, data_dir: Path) -> DestinationPolicy:
    return DestinationPolicy(sqlite_dirs=(str(allowed),), protected_dirs=(str(data_dir),))


def test_real_database_opens_and_is_left_as_it_was(
    allowed: Path, policy: DestinationPolicy
) -> None:
    path = allowed / "sales.db"
    _make_database(path)
    before = path.read_bytes()
    result = _open(path, policy)
    assert result.ok, result.detail
    assert (
        result.detail
        == f"ok: {path} is a SQLite 3 database (2 pages of 4096 bytes, rollback journal)"
    )
    assert path.read_bytes() == before


def test_a_wal_database_gets_no_wal_or_shm_file(allowed: Path, policy: DestinationPolicy) -> None:
    path = allowed / "wal.db"
    _make_database(path, wal=True)
    before = sorted(p.name for p in allowed.iterdir())
    assert _open(path, policy).ok
    assert sorted(p.name for p in allowed.iterdir()) == before == ["wal.db"]


@pytest.mark.parametrize("name", ["my sales.db", "odd?mode=rwc.db", "hash#1.db", "pct%20.db"])
def test_awkward_file_names_are_just_names(
    allowed: Path, policy: DestinationPolicy, name: str
) -> None:
    _make_database(allowed / name)
    assert _open(allowed / name, policy).ok


def test_non_database_file_is_missing(allowed: Path, policy: DestinationPolicy) -> None:
    path = allowed / "notes.txt"
    path.write_text("not a database, just some text that is long enough to have a header\n" * 10)
    result = _open(path, policy)
    assert result.reason == "database_missing"
    assert "file is not a database" in result.detail


@pytest.mark.parametrize("name", ["missing.db", "missing.db?mode=rwc", "missing.db#x"])
def test_missing_file_is_missing_and_not_created(
    allowed: Path, policy: DestinationPolicy, name: str
) -> None:
    result = _open(allowed / name, policy)
    assert result.reason == "database_missing"
    assert result.detail == f"cannot open {allowed / name}: No such file or directory"
    assert list(allowed.iterdir()) == []


def test_directory_is_not_a_database(allowed: Path, policy: DestinationPolicy) -> None:
    (allowed / "sub").mkdir()
    result = _open(allowed / "sub", policy)
    assert result == ConnectionTestResult(
        "database_missing", f"cannot open {allowed / 'sub'}: not a regular file"
    )


def test_a_fifo_does_not_block(allowed: Path, policy: DestinationPolicy) -> None:
    os.mkfifo(allowed / "pipe.db")
    result = _open_in_thread(allowed / "pipe.db", policy)
    assert result is not None, "the test blocked on a FIFO"
    assert result.reason == "database_missing" and result.detail.endswith("not a regular file")


def test_a_fifo_swapped_in_after_the_check_does_not_block(
    allowed: Path, policy: DestinationPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race of the finding, made deterministic: the file passes the check,
    # then a FIFO takes its name before the open.
    path = allowed / "swap.db"
    _make_database(path)
    real_stat = os.stat

    def stat_then_swap(*args: object, **kwargs: object) -> os.stat_result:
        checked = real_stat(*args, **kwargs)  # type: ignore[arg-type]
        if args and str(args[0]).endswith("swap.db") and not (allowed / "swap.old").exists():
            path.rename(allowed / "swap.old")
            os.mkfifo(path)
        return checked

    monkeypatch.setattr(os, "stat", stat_then_swap)
    result = _open_in_thread(path, policy)
    assert result is not None, "the test blocked on a FIFO swapped in after the check"
    assert result.reason == "database_missing", result.detail


def test_a_symlink_to_a_database_is_not_followed(allowed: Path, policy: DestinationPolicy) -> None:
    _make_database(allowed / "real.db")
    (allowed / "link.db").symlink_to(allowed / "real.db")
    result = _open(allowed / "link.db", policy)
    assert result.reason == "refused_by_policy"
    assert "symbolic link" in result.detail


def test_a_symlinked_directory_on_the_way_is_not_followed(
    allowed: Path, policy: DestinationPolicy, data_dir: Path
) -> None:
    (allowed / "sneaky").symlink_to(data_dir)
    result = _open(allowed / "sneaky" / "vault.db", policy)
    assert result.reason == "refused_by_policy", result.detail


def test_the_vaults_own_database_is_never_probed(data_dir: Path) -> None:
    # Even when an admin allowed a directory above the data dir.
    wide = DestinationPolicy(sqlite_dirs=(str(data_dir.parent),), protected_dirs=(str(data_dir),))
    for name in ("vault.db", "keystore.key", "nothing-here"):
        result = _open(data_dir / name, wide)
        assert result.reason == "refused_by_policy", result.detail
        assert "data directory" in result.detail


def test_a_hard_link_to_the_vaults_database_is_refused(
    allowed: Path, policy: DestinationPolicy, data_dir: Path
) -> None:
    os.link(data_dir / "vault.db", allowed / "innocent.db")
    result = _open(allowed / "innocent.db", policy)
    assert result.reason == "refused_by_policy"
    assert "vault's own files" in result.detail


def test_outside_the_allowed_directories_nothing_is_opened(
    tmp_path: Path, policy: DestinationPolicy
) -> None:
    _make_database(tmp_path / "elsewhere.db")
    for path in (tmp_path / "elsewhere.db", tmp_path / "allowed" / ".." / "elsewhere.db"):
        result = _open(path, policy)
        assert result.reason == "refused_by_policy", result.detail


def test_with_no_allowed_directory_every_sqlite_test_is_refused(allowed: Path) -> None:
    _make_database(allowed / "sales.db")
    result = _open(allowed / "sales.db", DestinationPolicy())
    assert result.reason == "refused_by_policy"
    assert "allow-sqlite-dir" in result.detail


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"", "database_missing"),
        (b"SQLite format 3\x00" + b"\x00" * 84, "database_missing"),  # page size 0
        (b"SQLite format 3\x00\x10\x00\x01\x01\x00\x40\x20\x20" + b"\x00" * 76, "ok"),
        (b"SQLite format 3\x00\x10\x00\x01\x01\x00\x41\x20\x20" + b"\x00" * 76, "database_missing"),
        (b"SQLite format 3\x00\x10\x00", "database_missing"),  # cut short
    ],
)
def test_the_header_is_judged_by_the_file_format(header: bytes, reason: str) -> None:
    assert sqlite._judge_header("/x.db", header).reason == reason
