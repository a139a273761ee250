"""SQLite "test connection": is this file, under an allowed directory, a SQLite database?

A test names a path on the gateway machine, so it could probe the gateway's own
files (threat T-CN-4).  It is answered only for a file under a directory an
admin listed (none by default: every SQLite test is refused), never inside the
vault's data dir, and the file is reached without following any symbolic link:
each directory below the allowed one is opened with ``O_NOFOLLOW`` relative to
its parent, and the file itself with ``O_NOFOLLOW | O_NONBLOCK`` after an
``lstat`` says it is a regular file, so a FIFO (swapped in or not) never
blocks and a device is never opened.  The opened file is compared with what
was checked and with the data dir's files (a hard link to ``vault.db`` is
refused).

Nothing is written and SQLite itself never opens the file: it would reopen it
by name (defeating the checks above, as ``immutable=1`` on ``/dev/fd/N`` does
once SQLite resolves that link) and parse an untrusted database in the
process that holds the gateway's keys.  The 100-byte header (the SQLite file
format, section 1.3) is read from the checked descriptor instead.
"""

from __future__ import annotations

import os
import posixpath
import stat
import struct

from agent_keys.errors import InvalidInputError
from vault.connectors.connection import ConnectionTestResult
from vault.connectors.destinations import DestinationPolicy

HEADER_BYTES = 100
_MAGIC = b"SQLite format 3\x00"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def attempt_open(path: str, policy: DestinationPolicy) -> ConnectionTestResult:
    """Check that ``path`` is a SQLite database the policy lets a test look at; never raises."""
    allowed = _allowed_dir(path, policy)
    if isinstance(allowed, ConnectionTestResult):
        return allowed
    protected = _protected_inodes(policy.protected_dirs)
    parts = posixpath.relpath(path, allowed).split("/")
    try:
        fd = os.open(allowed, _DIR_FLAGS)
    except OSError as e:
        return _missing(path, f"the allowed directory {allowed} cannot be opened: {e.strerror}")
    try:
        if _inode(os.fstat(fd)) in protected:
            return _refused(path, "it is inside the vault's data directory")
        for part in parts[:-1]:
            child = _open_directory(fd, part, path, protected)
            os.close(fd)
            fd = child
        return _check_file(fd, parts[-1], path, protected)
    except _Refusal as refusal:
        return refusal.result
    except OSError as e:
        return _missing(path, e.strerror or type(e).__name__)
    finally:
        os.close(fd)


class _Refusal(Exception):
    def __init__(self, result: ConnectionTestResult) -> None:
        super().__init__(result.reason)
        self.result = result


def _allowed_dir(path: str, policy: DestinationPolicy) -> str | ConnectionTestResult:
    """The listed directory ``path`` lies under (lexically), or the refusal."""
    if posixpath.normpath(path) != path or "/../" in f"{path}/":
        return _refused(path, "the path is not in normal form (no '.', '..' or '//')")
    if not policy.sqlite_dirs:
        return _refused(
            path, "no directory is allowed for SQLite tests (gwvault test-policy allow-sqlite-dir)"
        )
    for protected in policy.protected_dirs:
        if path == protected or path.startswith(protected.rstrip("/") + "/"):
            return _refused(path, "it is inside the vault's data directory")
    for allowed in policy.sqlite_dirs:
        if path.startswith(allowed.rstrip("/") + "/"):
            return allowed
    return _refused(path, "it is not under a directory allowed for SQLite tests")


def _open_directory(
    parent: int, name: str, path: str, protected: frozenset[tuple[int, int]]
) -> int:
    """Directory ``name`` below ``parent``, never through a symbolic link.

    ``O_NOFOLLOW`` makes a link swapped in after the ``lstat`` fail the open
    (ELOOP) rather than be followed.
    """
    if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
        raise _Refusal(_refused(path, f"{name}/ on its way is a symbolic link (not followed)"))
    child = os.open(name, _DIR_FLAGS, dir_fd=parent)
    if _inode(os.fstat(child)) in protected:
        os.close(child)
        raise _Refusal(_refused(path, "it is inside the vault's data directory"))
    return child


def _check_file(
    parent: int, name: str, path: str, protected: frozenset[tuple[int, int]]
) -> ConnectionTestResult:
    before = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if stat.S_ISLNK(before.st_mode):
        return _refused(path, "it is a symbolic link (not followed)")
    if not stat.S_ISREG(before.st_mode):
        return _missing(path, "not a regular file")
    fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
    try:
        opened = os.fstat(fd)
        if _inode(opened) != _inode(before) or not stat.S_ISREG(opened.st_mode):
            return _missing(path, "the file changed while it was checked")
        if _inode(opened) in protected:
            return _refused(path, "it is one of the vault's own files")
        header = os.pread(fd, HEADER_BYTES, 0)
    finally:
        os.close(fd)
    return _judge_header(path, header)


def _judge_header(path: str, header: bytes) -> ConnectionTestResult:
    """SQLite file format 1.3: magic, page size, payload fractions 64/32/32."""
    if not header:
        return _missing(path, "the file is empty (no SQLite database yet)")
    if len(header) < HEADER_BYTES or not header.startswith(_MAGIC):
        return _missing(path, "file is not a database (no SQLite 3 header)")
    (raw_page_size,) = struct.unpack_from(">H", header, 16)
    page_size = 65536 if raw_page_size == 1 else raw_page_size
    valid_size = 512 <= page_size <= 65536 and page_size & (page_size - 1) == 0
    if not valid_size or header[21:24] != b"\x40\x20\x20" or header[18] not in (1, 2):
        return _missing(path, "file is not a database (a damaged SQLite header)")
    (pages,) = struct.unpack_from(">I", header, 28)
    journal = "WAL" if header[18] == 2 else "rollback journal"
    return ConnectionTestResult(
        "ok", f"ok: {path} is a SQLite 3 database ({pages} pages of {page_size} bytes, {journal})"
    )


def _protected_inodes(directories: tuple[str, ...]) -> frozenset[tuple[int, int]]:
    """(device, inode) of each protected directory and every file directly in it."""
    found: set[tuple[int, int]] = set()
    for directory in directories:
        try:
            found.add(_inode(os.stat(directory)))
            with os.scandir(directory) as entries:
                found.update(_inode(e.stat(follow_symlinks=False)) for e in entries)
        except OSError:
            continue  # a data dir that cannot be read holds nothing to compare
    return frozenset(found)


def _inode(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _refused(path: str, why: str) -> ConnectionTestResult:
    return ConnectionTestResult("refused_by_policy", f"not testing {path}: {why}")


def _missing(path: str, why: str) -> ConnectionTestResult:
    return ConnectionTestResult("database_missing", f"cannot open {path}: {why}")


def check_file_for_put(path: str, policy: DestinationPolicy | None) -> None:
    """Refuse to store a SQLite credential for a file that is not there.

    ``policy`` None is the local operator (the CLI), who can list the machine's
    files anyway: the path must name a regular file (a link to one is fine).
    A web caller is answered only where a connection test would be answered
    (under an allowed directory, by the same walk, no link followed) and there
    must find a SQLite database; elsewhere the put is not checked, so storing a
    credential never tells a web caller whether a file exists on the gateway
    (T-CN-4).  Raises ``InvalidInputError``; checks, never creates or writes.
    """
    if policy is None:
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            raise InvalidInputError(
                f"the SQLite database {path} cannot be used: {e.strerror}; give the path of an"
                " existing database file"
            ) from e
        if not stat.S_ISREG(mode):
            raise InvalidInputError(f"the SQLite database {path} is not a regular file")
        return
    result = attempt_open(path, policy)
    if result.reason == "database_missing":
        raise InvalidInputError(result.detail)
