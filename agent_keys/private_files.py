"""Creating files that hold keys or key-protected data: new, private, complete.

``O_EXCL`` never adopts or replaces a file someone else put there,
``O_NOFOLLOW`` never writes through a planted symlink, mode 0600 from the first
byte, and ``fsync`` before returning; a failed write removes the partial file.

``memory_files`` is for libraries that insist on a path (OpenSSL under cheroot
and libpq): anonymous in-memory files that never touch the disk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


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
