"""Which PKCS#11 module may be loaded: checked where it lies, hashed, compared.

Loading a PKCS#11 module runs its code in the gateway process: its ELF
constructors run inside ``dlopen``, before any PIN is asked.  So a module is
loaded only when (threat T-HSM-8):

- its path is absolute, and every directory on the way to it is owned by root
  or by this process's user and writable by neither group nor others; a
  symlink on the way is followed (distributions install modules behind links,
  ``/usr/lib/softhsm/libsofthsm2.so`` -> ``../x86_64-linux-gnu/softhsm/...``)
  only if owned by root or us, and the directories it leads through get the
  same check, so every name ``dlopen`` will resolve is one only root or we can
  change;
- the file is regular, owned by root or us, not group- or other-writable;
- its SHA-256, hashed from the descriptor whose owner and mode were checked,
  equals the one an admin recorded when binding the vault to it (``init``,
  ``keystore migrate``, ``keystore trust-module``).

What remains (a TOCTOU window): ``dlopen`` opens the path again, by name.
Between the check and that open only root or the gateway user can change any
directory, link or file on the way (that is what the ownership and mode checks
buy), and both can already run code as the gateway.

Nothing here loads a module; ``agent_keys.pkcs11_keystore`` calls
``check_module`` right before it does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from agent_keys.errors import AccessDeniedError, InvalidInputError, KeyBackendError

# As Linux's own path resolution allows (path_resolution(7)).
_MAX_SYMLINKS = 40
# Vendor modules are tens of MiB at most; a larger "module" is not one.
_MAX_MODULE_BYTES = 1 << 30
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModuleFile:
    """A module file that passed the location checks, and its SHA-256 (hex)."""

    path: str
    resolved: str
    sha256: str


def inspect_module(path: str) -> ModuleFile:
    """Check where the module ``path`` lies and hash it, without loading it.

    Raises ``InvalidInputError`` for a relative path, ``KeyBackendError`` when
    it is missing or unreadable, ``AccessDeniedError`` when anyone but root or
    this user could change it.
    """
    if not os.path.isabs(path) or "\0" in path:
        raise InvalidInputError(f"the PKCS#11 module path {path!r} must be absolute")
    resolved, checked = _resolve_checked(path)
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise KeyBackendError(f"cannot read the PKCS#11 module {path}: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino) != (checked.st_dev, checked.st_ino):
            raise AccessDeniedError(f"the PKCS#11 module {path} changed while it was checked")
        _check_writers(st, path, resolved)
        return ModuleFile(path, resolved, _sha256(f, path))


def check_module(path: str, sha256: str) -> ModuleFile:
    """``inspect_module``, and refuse (``KeyBackendError``) other bytes than ``sha256``."""
    found = inspect_module(path)
    if not hmac.compare_digest(found.sha256, sha256):
        raise KeyBackendError(
            f"the PKCS#11 module {path} is not the one this vault trusts: its SHA-256 changed"
            " since it was bound, so it was not loaded. If you upgraded it, accept it with:"
            " gwvault keystore trust-module"
        )
    return found


def _resolve_checked(path: str) -> tuple[str, os.stat_result]:
    """Follow ``path`` name by name from ``/``, checking each directory, link and
    the file; the file's real path and its ``lstat``."""
    pending = _names(path)
    current = "/"
    _check_writers(_lstat("/", path), path, "/")
    links = 0
    while pending:
        name = pending.pop()
        if name == "..":
            current = os.path.dirname(current)  # already checked on the way down
            continue
        candidate = os.path.join(current, name)
        st = _lstat(candidate, path)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                raise KeyBackendError(f"the PKCS#11 module path {path} has too many symlinks")
            # A link's own mode is always 0777; who may replace it is decided by
            # its directory (checked) and, in a sticky one, by its owner.
            _check_writers(st, path, candidate, mode=False)
            target = os.readlink(candidate)
            current = "/" if os.path.isabs(target) else current
            pending.extend(_names(target))
        elif pending:
            if not stat.S_ISDIR(st.st_mode):
                raise KeyBackendError(
                    f"cannot load the PKCS#11 module {path}: {candidate} is not a directory"
                )
            _check_writers(st, path, candidate)
            current = candidate
        else:
            if not stat.S_ISREG(st.st_mode):
                raise KeyBackendError(f"the PKCS#11 module {path} is not a regular file")
            _check_writers(st, path, candidate)
            return candidate, st
    raise KeyBackendError(f"the PKCS#11 module path {path} names no file")


def _names(path: str) -> list[str]:
    """The names of ``path`` in the order ``pop`` takes them."""
    return [name for name in reversed(path.split("/")) if name not in ("", ".")]


def _lstat(candidate: str, path: str) -> os.stat_result:
    try:
        return os.lstat(candidate)
    except FileNotFoundError as e:
        raise KeyBackendError(
            f"cannot load the PKCS#11 module {path}: {candidate} does not exist;"
            " check --pkcs11-module"
        ) from e
    except OSError as e:
        raise KeyBackendError(f"cannot load the PKCS#11 module {path}: {e.strerror}") from e


def _check_writers(st: os.stat_result, path: str, where: str, *, mode: bool = True) -> None:
    """Only root or this process's user may change ``where`` (on the way to ``path``)."""
    if st.st_uid not in (0, os.geteuid()):
        raise AccessDeniedError(
            f"refusing to load the PKCS#11 module {path}: {where} is owned by uid {st.st_uid},"
            " neither root nor this user, who could put other code there"
        )
    if mode and st.st_mode & 0o022:
        raise AccessDeniedError(
            f"refusing to load the PKCS#11 module {path}: {where} is writable by group or"
            f" others (mode {stat.S_IMODE(st.st_mode):04o}); install the module where only"
            " root can write (e.g. under /usr/lib)"
        )


def _sha256(f: BinaryIO, path: str) -> str:
    digest = hashlib.sha256()
    size = 0
    while chunk := f.read(_CHUNK):
        size += len(chunk)
        if size > _MAX_MODULE_BYTES:
            raise KeyBackendError(f"the PKCS#11 module {path} is larger than 1 GiB; not a module")
        digest.update(chunk)
    return digest.hexdigest()
