"""``gwvault serve`` as a separate process, as an operator starts it, for tests."""

from __future__ import annotations

import contextlib
import http.client
import os
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from tests.service_fixtures import free_tcp_port
from tests.vault.cli.gwvault_process import GWVAULT

# The endpoint's certificate is self-signed: these tests check what it serves, not who it is.
CLIENT_TLS = ssl.create_default_context()
CLIENT_TLS.check_hostname = False
CLIENT_TLS.verify_mode = ssl.CERT_NONE
READY_SECONDS = 20.0


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` forked (its workers and housekeeper), oldest first."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


@contextlib.contextmanager
def gwvault_serve(
    data_dir: Path,
    *args: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log_file: Path | None = None,
    wait_ready: bool = False,
    launcher: Sequence[str] = (),
    allow_root: bool = True,
    cwd: Path | None = None,
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``gwvault serve --workers N`` on a free port, its workers and housekeeper
    forked; killed if a test left it running.

    ``data_dir`` is a single machine's or a cluster member's (its cluster.json
    names the shared database).  ``log_file`` takes the server's log (stderr)
    instead of a pipe nobody reads, which a chatty server would fill and block
    on; ``wait_ready`` waits until /readyz answers 200.  ``launcher`` goes before
    the command (``setpriv``, ``prlimit``: as another user, with other limits);
    ``allow_root`` passes ``--allow-root``, since the tests run as root here.
    """
    port = free_tcp_port()
    with contextlib.ExitStack() as stack:
        stderr: int | IO[str] = subprocess.PIPE
        if log_file is not None:
            stderr = stack.enter_context(log_file.open("a"))
        root = ["--allow-root"] if allow_root else []
        serve = ["serve", *root, "--port", str(port), "--workers", str(workers)]
        process = subprocess.Popen(
            [*launcher, str(GWVAULT), "--data-dir", str(data_dir), *args, *serve],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, **(env or {})},
            cwd=cwd,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert first.startswith("serving https://"), _failed_start(process, log_file, first)
            deadline = time.monotonic() + 10
            while len(children_of(process.pid)) < workers + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            if wait_ready:
                assert wait_for_status(port, "/readyz", 200), f"{data_dir} never got ready"
            yield process, port
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


def probe(port: int, path: str) -> int | None:
    """The status ``path`` answers on loopback ``port``; None when nothing answers."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=CLIENT_TLS, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_for_status(port: int, path: str, status: int, seconds: float = READY_SECONDS) -> bool:
    """Whether ``path`` answers ``status`` within ``seconds`` (asked every 0.1 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe(port, path) == status:
            return True
        time.sleep(0.1)
    return False


def _failed_start(process: subprocess.Popen[str], log_file: Path | None, first: str) -> str:
    process.wait(timeout=10)
    if log_file is not None:
        return f"serve did not start ({first!r}): {log_file.read_text()[-2000:]}"
    assert process.stderr is not None
    return f"serve did not start ({first!r}): {process.stderr.read()[-2000:]}"
