"""Files that hold keys or say where keys are: created private, read only when private.

Creating: ``O_EXCL`` never adopts or replaces a file someone else put there,
``O_NOFOLLOW`` never writes through a planted symlink, mode 0600 from the first
byte, and ``fsync`` before returning; a failed write removes the partial file.
Replacing goes through a scratch file and ``rename``, so a crash leaves the old
content or the new one, never a mix.

Reading: the file is opened without following a symlink and checked on the
opened descriptor (so nothing can be swapped between the check and the read):
a regular file, owned by this process's user, with no group or other bits
(threats T-KS-1, T-KS-3).

``memory_files`` is for libraries that insist on a path (OpenSSL's load_cert_chain
and libpq): anonymous in-memory files that never touch the disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from agent_keys.errors import AccessDeniedError


def create_private_file(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` (bytes, or chunks streamed from an iterable) to the new
    file ``path`` (0600).

    Raises ``FileExistsError`` if ``path`` exists and ``OSError`` for any other
    failure; callers turn them into the error their user can act on.  Whatever
    fails (the disk, or the iterable producing the data), no partial file stays.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in [data] if isinstance(data, bytes) else data:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def replace_private_file(path: Path, data: bytes) -> None:
    """Make ``path`` hold ``data`` (0600), atomically, and durably.

    Written to ``<name>.tmp`` beside it first (a leftover of a killed writer is
    removed), renamed over ``path`` (a symlink there is replaced, never
    followed), then the directory is synced.  Raises ``OSError``.
    """
    scratch = path.with_name(path.name + ".tmp")
    scratch.unlink(missing_ok=True)
    create_private_file(scratch, data)
    try:
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename, a removal) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_private_file(path: Path, max_bytes: int, what: str) -> bytes:
    """The content of ``path``, at most ``max_bytes + 1`` bytes (more than
    ``max_bytes`` means the file is too long), once it proved private.

    ``what`` names the file in messages ("key file").  Raises
    ``AccessDeniedError`` when it is a symlink, not a regular file, owned by
    another user, or open to group or others; ``FileNotFoundError`` when it is
    missing and ``OSError`` otherwise (callers say what to do then).
    """
    try:
        # O_NONBLOCK: opening a FIFO planted at the path must not hang us.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise AccessDeniedError(f"{what} {path} is a symlink; refusing to follow it") from e
        raise
    with os.fdopen(fd, "rb") as f:
        check_private(os.fstat(f.fileno()), path, what)
        return f.read(max_bytes + 1)


def check_private(st: os.stat_result, path: Path, what: str) -> None:
    """Refuse (``AccessDeniedError``) a file that is not ours alone."""
    if not stat.S_ISREG(st.st_mode):
        raise AccessDeniedError(f"{what} {path} is not a regular file")
    if st.st_uid != os.geteuid():
        raise AccessDeniedError(f"{what} {path} is owned by another user; refusing to use it")
    if st.st_mode & 0o077:
        raise AccessDeniedError(
            f"{what} {path} is accessible to group or others (mode"
            f" {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
        )


@contextlib.contextmanager
def memory_files(*contents: bytes) -> Iterator[list[str]]:
    """Paths to anonymous in-memory files holding ``contents`` (Linux memfd),
    valid inside the ``with`` block, for this process only."""
    descriptors = []
    try:
        for data in contents:
            fd = os.memfd_create("gwvault", os.MFD_CLOEXEC)
            descriptors.append(fd)
            os.write(fd, data)
        yield [f"/proc/self/fd/{fd}" for fd in descriptors]
    finally:
        for fd in descriptors:
            os.close(fd)
