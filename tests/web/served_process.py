"""``gwvault serve`` as a separate process, as an operator starts it, for tests."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.service_fixtures import free_tcp_port
from tests.vault.cli.gwvault_process import GWVAULT

# The endpoint's certificate is self-signed: these tests check what it serves, not who it is.
CLIENT_TLS = ssl.create_default_context()
CLIENT_TLS.check_hostname = False
CLIENT_TLS.verify_mode = ssl.CERT_NONE


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` forked (its workers and housekeeper), oldest first."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


@contextlib.contextmanager
def gwvault_serve(
    data_dir: Path, *args: str, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``gwvault serve --workers N`` on a free port, its workers and housekeeper
    forked; killed if a test left it running."""
    port = free_tcp_port()
    process = subprocess.Popen(
        [str(GWVAULT), "--data-dir", str(data_dir), *args, "serve", "--port", str(port),
         "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("serving https://")
        deadline = time.monotonic() + 10
        while len(children_of(process.pid)) < workers + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
