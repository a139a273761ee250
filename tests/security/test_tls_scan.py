"""An independent TLS scanner (sslyze, with its own OpenSSL builds) against the live endpoint.

What web/server.py promises, checked from the outside: no SSL 2.0/3.0 nor
TLS 1.0/1.1; TLS 1.2 only with ECDHE and an AEAD suite (AES-GCM or
ChaCha20-Poly1305); TLS 1.3 offered; no TLS compression (CRIME); no
client-initiated renegotiation, and RFC 5746 secure renegotiation signalled;
not vulnerable to Heartbleed or the OpenSSL CCS injection.

sslyze's legacy OpenSSL is what lets it offer SSL 2.0/3.0 at all; the same
rules run against a deliberately permissive control server, which they must
fault, so a scanner that silently offered nothing could not pass the test.

sslyze is optional: without it the test skips, and fails under
``GWVAULT_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.service_fixtures import require_service
from tests.tls_control import permissive_server
from tests.web_fixtures import LiveServer

# The control server offers TLS 1.0/1.1 on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")

AEAD_MARKERS = ("_GCM_", "_CHACHA20_POLY1305_")
LEGACY_VERSIONS = ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1")


def sslyze_or_skip() -> Any:
    """The sslyze package, or a skip (a failure when services are required)."""
    if importlib.util.find_spec("sslyze") is None:
        require_service("sslyze is not installed (pip install sslyze; needs nassl wheels)")
    try:
        # import_module, not import: the type check must pass where sslyze is absent.
        return importlib.import_module("sslyze")
    except ImportError as error:  # e.g. nassl's binary wheel does not load here
        require_service(f"sslyze does not import: {error}")


def scan(port: int) -> Any:
    """sslyze's scan of 127.0.0.1:``port`` (as ``localhost``); fails if it could not scan."""
    sslyze = sslyze_or_skip()
    commands = {
        sslyze.ScanCommand.SSL_2_0_CIPHER_SUITES,
        sslyze.ScanCommand.SSL_3_0_CIPHER_SUITES,
        sslyze.ScanCommand.TLS_1_0_CIPHER_SUITES,
        sslyze.ScanCommand.TLS_1_1_CIPHER_SUITES,
        sslyze.ScanCommand.TLS_1_2_CIPHER_SUITES,
        sslyze.ScanCommand.TLS_1_3_CIPHER_SUITES,
        sslyze.ScanCommand.TLS_COMPRESSION,
        sslyze.ScanCommand.SESSION_RENEGOTIATION,
        sslyze.ScanCommand.HEARTBLEED,
        sslyze.ScanCommand.OPENSSL_CCS_INJECTION,
    }
    location = sslyze.ServerNetworkLocation("localhost", port, ip_address="127.0.0.1")
    scanner = sslyze.Scanner(per_server_concurrent_connections_limit=5)
    scanner.queue_scans(
        [sslyze.ServerScanRequest(server_location=location, scan_commands=commands)]
    )
    (result,) = list(scanner.get_results())
    assert result.scan_status == sslyze.ServerScanStatusEnum.COMPLETED, (
        f"sslyze could not scan port {port}: {result.connectivity_error_trace}"
    )
    attempts = result.scan_result
    for command in commands:
        attempt = getattr(attempts, command.value)
        assert attempt.status == sslyze.ScanCommandAttemptStatusEnum.COMPLETED, (
            f"{command.value}: {attempt.error_reason} {attempt.error_trace}"
        )
    return attempts


def findings(attempts: Any) -> tuple[list[str], int]:
    """Every breach of the endpoint's TLS policy in a scan, and how many checks ran."""
    problems: list[str] = []
    checks = 0

    def check(ok: bool, problem: str) -> None:
        nonlocal checks
        checks += 1
        if not ok:
            problems.append(problem)

    for version in LEGACY_VERSIONS:
        accepted = getattr(attempts, f"{version}_cipher_suites").result.accepted_cipher_suites
        names = [suite.cipher_suite.name for suite in accepted]
        check(not accepted, f"{version} accepted: {names}")
    tls12 = attempts.tls_1_2_cipher_suites.result.accepted_cipher_suites
    check(bool(tls12), "TLS 1.2 is not offered")
    for suite in tls12:
        name = suite.cipher_suite.name
        check(name.startswith("TLS_ECDHE_"), f"TLS 1.2 suite without ECDHE: {name}")
        check(any(m in name for m in AEAD_MARKERS), f"TLS 1.2 suite without AEAD: {name}")
    tls13 = attempts.tls_1_3_cipher_suites.result.accepted_cipher_suites
    check(bool(tls13), "TLS 1.3 is not offered")
    check(
        not attempts.tls_compression.result.supports_compression,
        "TLS compression is accepted (CRIME)",
    )
    renegotiation = attempts.session_renegotiation.result
    check(
        not renegotiation.is_vulnerable_to_client_renegotiation_dos,
        "client-initiated renegotiation is accepted "
        f"({renegotiation.client_renegotiations_success_count} times)",
    )
    check(
        renegotiation.supports_secure_renegotiation,
        "no RFC 5746 secure renegotiation (insecure legacy renegotiation)",
    )
    check(not attempts.heartbleed.result.is_vulnerable_to_heartbleed, "vulnerable to Heartbleed")
    check(
        not attempts.openssl_ccs_injection.result.is_vulnerable_to_ccs_injection,
        "vulnerable to the OpenSSL CCS injection",
    )
    return problems, checks


@pytest.fixture
def permissive_port() -> Iterator[int]:
    """A control server that takes TLS 1.0-1.3, every suite and client renegotiation."""
    sslyze_or_skip()  # no scanner, no point starting it
    with permissive_server() as port:
        yield port


def test_endpoint_passes_the_tls_scan(
    live_server: LiveServer, record_property: Callable[[str, object], None]
) -> None:
    problems, checks = findings(scan(live_server.port))
    print(f"SECURITY-SUMMARY sslyze checks={checks} failures={len(problems)}")
    record_property("checks", checks)
    record_property("failures", len(problems))
    assert not problems, "\n".join(problems)


def test_the_scan_faults_a_permissive_server(permissive_port: int) -> None:
    """Control: the same rules catch old protocols and non-AEAD/non-ECDHE suites."""
    problems, _checks = findings(scan(permissive_port))
    text = "\n".join(problems)
    for expected in (
        "tls_1_0 accepted",
        "tls_1_1 accepted",
        "TLS 1.2 suite without ECDHE",
        "TLS 1.2 suite without AEAD",
    ):
        assert expected in text, f"sslyze missed {expected!r} on the control server:\n{text}"
