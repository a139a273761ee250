"""Where ``gwvault serve`` listens right now, and the base of the links printed for it.

``gwvault serve`` may listen elsewhere than the stored endpoint settings say
(``--host``/``--port``), so a link printed from the settings could name a port
nothing serves.  The server therefore records its address in the data dir's
run file (``serving.json``, 0600, replaced atomically) and holds an exclusive
``flock`` on it while it serves; the workers it forks inherit the lock.  A
reader that can take the lock knows the file is stale (the server stopped or
was killed: the kernel drops the lock with the last process), so a reused pid
never makes a dead server look alive.

A link's base may instead be named with ``--url-base``: ``parse_url_base``
accepts an https origin only (no user, path, query or fragment), so a typo
or a pasted URL cannot turn into a link that sends its secret elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from agent_keys.errors import AccessDeniedError, InvalidInputError, StorageError
from agent_keys.private_files import check_private, create_private_file, sync_directory
from vault.format.strict_json import parse_json_object
from vault.names import is_host, is_ip_address

RUN_FILE = "serving.json"
_MAX_RUN_FILE = 1024
_MAX_URL_BASE = 300


@dataclass(frozen=True)
class ServedAddress:
    """The address a running ``gwvault serve`` listens on."""

    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return https_origin(self.host, self.port)

    @property
    def is_wildcard(self) -> bool:
        """Listening on every address (0.0.0.0, ::): no one address to give out."""
        return is_ip_address(self.host) and ipaddress.ip_address(self.host).is_unspecified


class RunFile:
    """The run file of one serving process: written at ``__enter__`` (after the
    socket listens), locked while serving, removed at ``__exit__`` if still ours."""

    def __init__(self, data_dir: Path, address: ServedAddress) -> None:
        self._path = data_dir / RUN_FILE
        self._address = address
        self._fd: int | None = None

    def __enter__(self) -> RunFile:
        """``StorageError`` when the file cannot be written."""
        try:
            self._write()
        except OSError as e:
            raise StorageError(f"cannot write {self._path}: {e.strerror or e}") from e
        return self

    def _write(self) -> None:
        facts = {"host": self._address.host, "port": self._address.port, "pid": self._address.pid}
        scratch = self._path.with_name(self._path.name + ".tmp")
        scratch.unlink(missing_ok=True)
        create_private_file(scratch, json.dumps(facts).encode())
        # Locked before it is renamed into place: no reader sees it unlocked.
        self._fd = os.open(scratch, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(scratch, self._path)
        except BaseException:
            os.close(self._fd)
            scratch.unlink(missing_ok=True)
            raise
        sync_directory(self._path.parent)

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            # Another serve started on this data dir since owns the file now.
            if _same_file(os.fstat(self._fd), os.stat(self._path, follow_symlinks=False)):
                self._path.unlink()
        os.close(self._fd)
        self._fd = None


def served_address(data_dir: Path) -> ServedAddress | None:
    """The address of the ``gwvault serve`` running on ``data_dir``; None when none
    runs (no run file, or a stale one) or the file is not one gwvault wrote."""
    path = data_dir / RUN_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        check_private(os.fstat(fd), path, "run file")
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # the lock is held: the server that wrote the file is alive
        return _parsed(os.read(fd, _MAX_RUN_FILE + 1))
    except (OSError, AccessDeniedError):
        return None
    else:
        return None  # we took the lock: nobody serves
    finally:
        os.close(fd)


def _parsed(raw: bytes) -> ServedAddress | None:
    if len(raw) > _MAX_RUN_FILE:
        return None
    try:
        facts = parse_json_object(raw)
        host, port, pid = facts["host"], facts["port"], facts["pid"]
    except (ValueError, TypeError, KeyError):
        return None
    if not (isinstance(host, str) and is_host(host)):
        return None
    if not (isinstance(port, int) and 1 <= port <= 65535 and isinstance(pid, int)):
        return None
    return ServedAddress(host, port, pid)


def parse_url_base(text: str) -> str:
    """``https://HOST[:PORT]`` from ``--url-base``; ``InvalidInputError`` for anything
    else (another scheme, a user, a path, a query, a fragment, an odd host)."""
    rule = "--url-base is https://HOST or https://HOST:PORT (no path, user, query or fragment)"
    if len(text) > _MAX_URL_BASE or not text.isascii() or not text.isprintable():
        raise InvalidInputError(rule)
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise InvalidInputError(rule) from e
    host = parts.hostname or ""
    if (
        (port is not None and not 1 <= port <= 65535)
        or parts.scheme != "https"
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "?" in text
        or "#" in text
        or not is_host(host)
        or parts.netloc.lower() != _netloc(host, port)
    ):
        raise InvalidInputError(rule)
    if is_ip_address(host) and ipaddress.ip_address(host).is_unspecified:
        raise InvalidInputError("--url-base names an address people reach, not 0.0.0.0 or ::")
    return https_origin(host, port)


def https_origin(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}" + ("" if port in (None, 443) else f":{port}")


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown.lower() + ("" if port is None else f":{port}")


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
