"""``gwvault serve`` with two workers, scraped as Prometheus would (T-MET-1, T-MET-2, T-MET-3).

A scrape lands on one worker and must count every worker's requests: the
workers are killed after serving, so the scrape is answered by a process that
served none of them.  curl (the real binary) fetches once; prometheus-client's
own parser reads every page.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.api_helpers import API
from tests.web.metrics_vault import NAMES, samples, stock_vault, value
from tests.web.served_process import CLIENT_TLS, children_of, gwvault_serve
from tests.web_fixtures import WebVault

METRICS = "/metrics"
ROUTE = f"{API}/credentials/<name>"
Served = tuple[subprocess.Popen[str], int, str]


@pytest.fixture
def served(web_vault: WebVault, tmp_path: Path, canary: str) -> Iterator[Served]:
    token = stock_vault(web_vault, tmp_path / "files", canary)
    with gwvault_serve(web_vault.data_dir, workers=2) as (process, port):
        yield process, port, token


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """One request on a connection of its own (so any worker may take it)."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=CLIENT_TLS, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _scrape(port: int, token: str) -> str:
    status, body = _get(port, METRICS, {"Authorization": f"Bearer {token}"})
    assert status == 200, body
    return body


def _counts_dirs(pids: list[int]) -> set[Path]:
    """The directories of the counts files these processes have mapped."""
    found = set()
    for pid in pids:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            path = Path(line.split()[-1])
            if path.parent.name.startswith("gwvault-metrics-"):
                found.add(path.parent)
    return found


def _replace_workers(process: subprocess.Popen[str]) -> None:
    workers = children_of(process.pid)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = children_of(process.pid)
        if len(now) == len(workers) and not set(now) & set(workers):
            return
        time.sleep(0.05)
    raise AssertionError("the workers were not replaced")


def test_every_workers_requests_are_counted_in_a_private_directory_removed_at_stop(
    served: Served, canary: str
) -> None:
    process, port, token = served
    for name in NAMES:
        assert _get(port, f"{API}/credentials/{name}")[0] == 401  # anonymous: counted too
    assert _get(port, "/no/such/page")[0] == 404
    served_by = children_of(process.pid)
    directories = _counts_dirs(served_by)
    _replace_workers(process)  # every process that served those requests is gone

    text = _scrape(port, token)
    parsed = samples(text)
    got = value(parsed, "gwvault_http_requests_total", route=ROUTE, method="GET", status="401")
    assert got == len(NAMES)
    assert value(parsed, "gwvault_http_requests_total", route="(unmatched)", method="GET",
                 status="404") == 1  # fmt: skip
    assert value(parsed, "gwvault_credentials", state="disabled") == 1
    assert value(parsed, "gwvault_credential_status", reason="database_missing") == 1
    assert "ledger" not in text and canary not in text and token not in text

    (directory,) = directories | _counts_dirs(children_of(process.pid))
    assert directory.stat().st_mode & 0o777 == 0o700
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not directory.exists()


def _raw(port: int, head: bytes) -> bytes:
    """``head`` sent as is over TLS; what comes back before the server closes."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        CLIENT_TLS.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        tls.sendall(head)
        received = b""
        while chunk := _recv(tls):
            received += chunk
        return received


def _recv(tls: ssl.SSLSocket) -> bytes:
    try:
        return tls.recv(65536)
    except (ConnectionResetError, ssl.SSLError):
        return b""


HOSTILE = {
    "huge-token": b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer gwm_"
    + b"A" * 200_000 + b"\r\nConnection: close\r\n\r\n",
    "many-headers": b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: y\r\n" * 5000
    + b"Connection: close\r\n\r\n",
    "delete": b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "unknown-method": b"BREW /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "post-with-origin": b"POST /metrics HTTP/1.1\r\nHost: x\r\nOrigin: https://localhost"
    b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
}  # fmt: skip


def test_curl_scrapes_and_hostile_scrapes_get_one_refusal_and_no_metrics(
    served: Served,
) -> None:
    _process, port, token = served
    url = f"https://127.0.0.1:{port}{METRICS}"
    # The token goes to curl on stdin ("-H @-"), not in argv where `ps` would show it.
    fetched = subprocess.run(
        ["curl", "-sk", "-H", "@-", "-w", "\n%{http_code}", url],
        input=f"Authorization: Bearer {token}\n", capture_output=True, text=True, timeout=30,
        check=True,
    )  # fmt: skip
    body, status = fetched.stdout.rsplit("\n", 1)
    assert status == "200"
    parsed = samples(body)
    assert value(parsed, "gwvault_vault_unlocked") == 1
    assert value(parsed, "gwvault_credentials", state="active") == 3
    anonymous = subprocess.run(
        ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", url],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert anonymous.stdout == "401"
    # One server for every hostile head: each start costs seconds.
    for case, head in HOSTILE.items():
        answer = _raw(port, head)
        refused = answer.split(b"\r\n", 1)[0].split(b" ")[1]
        # 403: a state change without the page's Origin (web.security) comes first.
        assert refused in (b"400", b"403", b"405", b"431", b"501"), (case, answer[:200])
        assert b"gwvault_" not in answer, case
        assert _scrape(port, token), case  # the server still answers
