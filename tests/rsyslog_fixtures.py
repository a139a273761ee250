"""A real rsyslogd on loopback, receiving syslog over TLS (RFC 5425), for the audit sink tests.

Debian's ``rsyslog`` with its OpenSSL stream driver (``rsyslog-openssl``),
started privately: its own configuration, pid file and work directory under a
test's temporary directory, one imtcp TLS listener on a free 127.0.0.1 port
with a server certificate from the tests' CA, and gwvault's messages written
to one file in RFC 5424 format, one per line: the README's configuration, read
from the README, so what it shows is what is tested.  A test can stop it (the
process really gone), restart it on the same port, and wait for records to
arrive.

Where rsyslogd or its TLS driver is missing the tests skip, or fail when
``GWVAULT_REQUIRE_SERVICES=1`` (``require_service``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.service_fixtures import free_tcp_port, require_service
from tests.tls_certificates import CertificateAuthority, ServerCertificate, issue_server_certificate
from vault.audit.sinks.syslog_tls import gwvault_records

RSYSLOGD = Path("/usr/sbin/rsyslogd")
DRIVER_MODULE = "lmnsd_ossl.so"  # the OpenSSL stream driver the README's configuration loads
_START_SECONDS = 15.0

README = Path(__file__).resolve().parents[1] / "README.md"
# The README's paths and port, and what the tests put there instead.
_README_PLACES = {
    "ca": "/etc/rsyslog.d/gwvault/ca.pem",
    "cert": "/etc/rsyslog.d/gwvault/server.pem",
    "key": "/etc/rsyslog.d/gwvault/server.key",
    "log": "/var/log/gwvault-audit.log",
    "listener": 'port="6514"',
}


def readme_configuration() -> str:
    """The rsyslog configuration the README gives, as written there."""
    block = re.search(r"<!-- rsyslog audit sink -->\n```\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "README: the rsyslog audit sink block"
    text = block.group(1)
    for place in _README_PLACES.values():
        assert text.count(place) == 1, f"README's rsyslog block: {place}"
    return text


@dataclass
class RsyslogServer:
    """A private rsyslogd listening for syslog over TLS on ``port``."""

    directory: Path
    port: int
    ca_pem: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        """The file rsyslogd writes gwvault's messages to, one RFC 5424 line each."""
        return self.directory / "gwvault-audit.log"

    @property
    def output_path(self) -> Path:
        """rsyslogd's own messages (its stdout and stderr)."""
        return self.directory / "rsyslogd.out"

    def start(self) -> None:
        """Start rsyslogd and wait until its TLS port takes connections."""
        with self.output_path.open("ab") as output:
            self.process = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", self.directory / "rsyslog.conf",
                 "-i", self.directory / "rsyslogd.pid"],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + _START_SECONDS
        while not _accepts(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rsyslogd did not start: {self.output_path.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop rsyslogd and wait until the process is gone (its sockets closed)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=_START_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def lines(self) -> list[bytes]:
        """The whole lines written so far: rsyslogd writes a long one in pieces."""
        if not self.log_path.exists():
            return []
        written = self.log_path.read_bytes()
        return written[: written.rfind(b"\n") + 1].splitlines()

    def records(self, gateway_id: str | None = None) -> list[dict[str, Any]]:
        """The records on the file so far (of one gateway, if given), in file order."""
        found = [r for r in map(gwvault_records, self.lines()) if r is not None]
        return [r for r in found if gateway_id is None or r["gateway_id"] == gateway_id]

    def wait_for_records(
        self, count: int, gateway_id: str | None = None, seconds: float = 10.0
    ) -> list[dict[str, Any]]:
        """The records once at least ``count`` arrived (fails after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while len(found := self.records(gateway_id)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} records arrived at rsyslogd")
            time.sleep(0.02)
        return found


def require_rsyslogd() -> None:
    if not RSYSLOGD.exists():
        require_service(f"{RSYSLOGD} is missing (Debian package rsyslog)")
    if not any(Path("/usr/lib").glob(f"*/rsyslog/{DRIVER_MODULE}")):
        require_service(f"rsyslog's {DRIVER_MODULE} is missing (Debian package rsyslog-openssl)")


@contextlib.contextmanager
def running_rsyslogd(
    directory: Path, ca_pem: str, certificate: ServerCertificate
) -> Iterator[RsyslogServer]:
    """A private rsyslogd serving ``certificate`` over TLS in ``directory``, stopped at the end.

    ``ca_pem`` is what a client should trust (the CA that issued the
    certificate, or another one in a test of refusal).
    """
    require_rsyslogd()
    server = RsyslogServer(directory, free_tcp_port(), ca_pem)
    _write_config(server, certificate)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _write_config(server: RsyslogServer, certificate: ServerCertificate) -> None:
    """The README's configuration with this server's files, port and work directory."""
    directory = server.directory
    (directory / "work").mkdir(exist_ok=True)
    files = {"ca": server.ca_pem, "cert": certificate.cert_pem, "key": certificate.key_pem}
    places = {"log": str(server.log_path)}
    places["listener"] = f'address="127.0.0.1" port="{server.port}"'
    for kind, text in files.items():
        path = directory / f"{kind}.pem"
        path.touch(mode=0o600)
        path.write_text(text)
        places[kind] = str(path)
    config = readme_configuration()
    for kind, place in _README_PLACES.items():
        config = config.replace(place, places[kind])
    work = f'global(workDirectory="{directory / "work"}")\n'
    (directory / "rsyslog.conf").write_text(work + config)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def process_is_gone(pid: int) -> bool:
    """Whether no process ``pid`` exists (a stopped server's was reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def rsyslogd(tmp_path: Path, trusted_ca: CertificateAuthority) -> Iterator[RsyslogServer]:
    """A private rsyslogd for one test, its certificate from the tests' CA."""
    directory = tmp_path / "rsyslogd"
    directory.mkdir()
    with running_rsyslogd(directory, trusted_ca.pem, issue_server_certificate(trusted_ca)) as s:
        yield s
