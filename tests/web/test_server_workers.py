"""``gwvault serve`` as worker processes: forked, restarted when one dies, all stopped together."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vault.cli.gwvault_process import GWVAULT
from tests.web.served_process import CLIENT_TLS, children_of, gwvault_serve
from tests.web_fixtures import WebVault


def workers_of(parent: int) -> list[int]:
    return children_of(parent)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def status_code(port: int) -> int:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=CLIENT_TLS)
    try:
        # An unknown token: looked up in the vault, so the worker's thread opens it.
        connection.request("GET", "/api/v1/status", headers={"Authorization": "Bearer unknown"})
        return connection.getresponse().status
    finally:
        connection.close()


def wait_for(condition: object, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def served(web_vault: WebVault) -> Iterator[tuple[subprocess.Popen[str], int]]:
    with gwvault_serve(web_vault.data_dir, workers=2) as (process, port):
        assert wait_for(lambda: len(workers_of(process.pid)) == 3)  # and the housekeeper
        yield process, port


def test_two_workers_serve_and_a_dead_one_is_replaced(
    served: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = served
    assert status_code(port) == 401
    first, *others = workers_of(process.pid)
    os.kill(first, signal.SIGKILL)
    assert wait_for(
        lambda: len(workers_of(process.pid)) == 3 and first not in workers_of(process.pid)
    )
    assert set(others) < set(workers_of(process.pid))
    assert all(status_code(port) == 401 for _ in range(10))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_worker(
    served: tuple[subprocess.Popen[str], int], stop: signal.Signals, web_vault: WebVault
) -> None:
    process, port = served
    assert status_code(port) == 401  # a worker's thread has opened the vault
    workers = workers_of(process.pid)
    process.send_signal(stop)
    assert process.wait(timeout=20) == 0
    assert not any(alive(pid) for pid in workers), "a worker outlived the server"
    # Each worker closed its kept connections: the last close checkpoints the log away.
    assert not (web_vault.data_dir / "vault.db-wal").exists()


def test_workers_stop_when_the_parent_is_killed(
    served: tuple[subprocess.Popen[str], int],
) -> None:
    process, _port = served
    workers = workers_of(process.pid)
    process.kill()
    process.wait()
    assert wait_for(lambda: not any(alive(pid) for pid in workers)), "orphaned workers serve on"


def test_a_worker_count_out_of_range_is_one_clear_error(web_vault: WebVault) -> None:
    done = subprocess.run(
        [str(GWVAULT), "--data-dir", str(web_vault.data_dir), "serve", "--allow-root",
         "--workers", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "--workers is 1 to 64" in done.stderr
    assert "Traceback" not in done.stderr
