"""SQLite open test with the stdlib driver: read-only, never creates a file."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path

from vault.connectors.connection import ConnectionTestResult


def attempt_open(path: str, timeout: float) -> ConnectionTestResult:
    """Open the database file read-only and read its schema; never raises for a bad file.

    A missing file fails (``mode=ro`` never creates one), and so does anything
    but a regular file and a file that is not a SQLite database: opening is
    lazy, the schema read is what makes SQLite look at the header.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return ConnectionTestResult(False, f"cannot open {path}: {e.strerror}")
    if not stat.S_ISREG(mode):
        # A FIFO would block the open for ever; a device or directory is no database.
        return ConnectionTestResult(False, f"cannot open {path}: not a regular file")
    # as_uri percent-encodes "?", "#" and "%" in the path, so a file name
    # cannot add URI parameters of its own (such as mode=rwc or vfs=).
    uri = f"{Path(path).as_uri()}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=timeout)
    except (sqlite3.Error, OSError, ValueError) as e:
        return ConnectionTestResult(False, f"cannot open {path}: {e}")
    with contextlib.closing(connection):
        try:
            (objects,) = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as e:
            return ConnectionTestResult(False, f"cannot read {path}: {e}")
    return ConnectionTestResult(
        True, f"ok: opened SQLite {sqlite3.sqlite_version} database with {objects} schema objects"
    )
