"""A real HTTP proxy for the tests: a private tinyproxy (Debian's ``tinyproxy``) on loopback.

Its own configuration in a temporary directory, a free loopback port, Basic
authentication with a random password, and a log file the tests read to show
a request went through it (``CONNECT 127.0.0.1:PORT``).  Without the
``tinyproxy`` binary the tests skip, and fail under
``GWVAULT_REQUIRE_SERVICES=1`` (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent_keys.secret import Secret
from tests.service_fixtures import free_tcp_port, require_service
from vault.connectors.proxy_route import ProxyRoute
from vault.proxy.settings import ProxySettings

_START_SECONDS = 10.0


@dataclass(frozen=True)
class TinyProxy:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def route(self, password: str | None = None) -> ProxyRoute:
        """Its route with its login (or ``password`` instead of the right one)."""
        given = self.password if password is None else password
        return ProxyRoute(self.host, self.port, self.user, Secret.from_text(given))

    def settings(self, password: str | None = None) -> ProxySettings:
        return ProxySettings("custom", self.route(password))

    def log(self) -> str:
        """What tinyproxy logged so far (it makes the file at its first line)."""
        if not self.log_file.exists():
            return ""
        return self.log_file.read_text(errors="replace")

    def tunnels_to(self, port: int) -> int:
        """How many CONNECTs to 127.0.0.1:``port`` its log shows."""
        return self.log().count(f"CONNECT 127.0.0.1:{port} HTTP/1.1")


@pytest.fixture(scope="session")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyProxy]:
    """One private tinyproxy for the session, stopped at its end."""
    binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
    if not os.access(binary, os.X_OK):
        require_service("tinyproxy is not installed (apt-get install tinyproxy)")
    home = tmp_path_factory.mktemp("tinyproxy")
    home.chmod(0o777)  # tinyproxy may drop to another user to write its log
    proxy = TinyProxy("127.0.0.1", free_tcp_port(), "gwvault-proxy",
                      "proxy-" + os.urandom(12).hex(), home / "tinyproxy.log")  # fmt: skip
    config = home / "tinyproxy.conf"
    config.write_text(
        f'Port {proxy.port}\nListen 127.0.0.1\nTimeout 30\nLogFile "{proxy.log_file}"\n'
        f'LogLevel Info\nPidFile "{home / "tinyproxy.pid"}"\nMaxClients 32\n'
        f"Allow 127.0.0.1\nBasicAuth {proxy.user} {proxy.password}\nDisableViaHeader Yes\n"
    )
    # -d: in the foreground, so this handle is the process to stop.
    process = subprocess.Popen(
        [binary, "-d", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_listening(proxy, process)
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(proxy: TinyProxy, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            require_service(f"tinyproxy exited at start ({process.returncode})")
        try:
            socket.create_connection((proxy.host, proxy.port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    require_service(f"tinyproxy did not listen within {_START_SECONDS:g} s")
