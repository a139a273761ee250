"""What goes into a diagnostics bundle, member by member, and what never does.

Everything here is chosen, never dumped: settings by an allow-list, failed
tests by their reason code (a driver's message can quote a user name, a
server's banner or worse: T-DG-1), log lines only gwvault's own (the request
log leaves out query strings, headers, bodies and entry-link secrets).  No
member reads a credential, a token or a key.
"""

from __future__ import annotations

import platform
import shutil
import ssl
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from vault.access.row_seal import TamperedRowError
from vault.connectors.connection import SUMMARIES
from vault.gateway import Gateway
from vault.version import SOFTWARE_VERSION

PLAIN_SETTINGS = ("gateway_id", "name", "epoch", "created_at", "schema_version")
"""Unsealed settings that are safe to send: identity and format, no key material."""
POLICY_SETTINGS = (
    "endpoint_host", "endpoint_port", "endpoint_allow_remote", "sealed_max_age_seconds",
    "tests_allowed_networks", "tests_sqlite_dirs", "credentials_retention_days",
    "health_run_requested_at", "health_check_every_seconds", "health_check_concurrency",
)  # fmt: skip
"""Sealed settings that are safe to send, named one by one: a setting added
later is not sent until someone decides it is safe and adds it here."""
SERVICE_UNIT = "gwvault.service"
MAX_LOG_LINES = 500
MAX_LOG_BYTES = 256 * 1024
MAX_FAILED_TESTS = 50
_JOURNAL_TIMEOUT_SECONDS = 10


def versions(gateway: Gateway | None) -> dict[str, Any]:
    """gwvault, Python, OpenSSL, the store's engine (and psycopg in a cluster), the OS."""
    found: dict[str, Any] = {
        "gwvault": SOFTWARE_VERSION,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openssl": ssl.OPENSSL_VERSION,
        "cryptography": _package_version("cryptography"),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "os_release": _os_release(),
    }
    if gateway is not None:
        found["store"] = gateway.store.engine.engine_version()
        if gateway.store.engine_kind == "postgresql":
            found["psycopg"] = _package_version("psycopg")
    return found


def settings(gateway: Gateway) -> dict[str, Any]:
    """The allow-listed settings; a sealed one whose seal fails is shown as such, not its value."""
    shown: dict[str, Any] = {key: gateway.store.setting(key) for key in PLAIN_SETTINGS}
    for key in POLICY_SETTINGS:
        try:
            shown[key] = gateway.rows.setting(key)
        except TamperedRowError:
            shown[key] = "(tampered: its seal does not verify)"
    return shown


def failed_tests(gateway: Gateway) -> list[dict[str, Any]]:
    """The newest failed connection tests: when, which data source, the reason code.

    Never the driver's ``detail``; a reason that is not one of gwvault's codes
    (a planted entry) is shown as unknown.
    """
    entries = gateway.store.find_audit(
        "action = ? AND outcome = ?", ["credential.tested", "failed"], limit=MAX_FAILED_TESTS
    )
    shown = []
    for entry in entries:
        try:
            reason = gateway.rows.verified_details(entry).get("reason")
            verified = True
        except TamperedRowError:
            reason, verified = None, False
        shown.append({
            "seq": entry.seq, "at": entry.at, "datasource": entry.target,
            "reason": reason if reason in SUMMARIES else "unknown", "verified": verified,
        })  # fmt: skip
    return shown


def server_log() -> str:
    """The server's recent lines from the journal (``gwvault.service``), or why there are none.

    The server logs to its stderr (``web.serve``); run as the systemd unit,
    journald keeps those lines, so they are read back from there.
    """
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        return "no journalctl on this machine: gwvault serve logs to its stderr only\n"
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [journalctl, "--unit", SERVICE_UNIT, "--lines", str(MAX_LOG_LINES), "--no-pager",
             "--output", "short-iso", "--quiet"],
            capture_output=True, timeout=_JOURNAL_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"journalctl could not be read ({type(e).__name__})\n"
    text = done.stdout[-MAX_LOG_BYTES:].decode("utf-8", "replace")
    lines = ["".join(c if c.isprintable() else "?" for c in line) for line in text.splitlines()]
    if not lines:
        return f"the journal holds no lines of {SERVICE_UNIT} (exit {done.returncode})\n"
    return "\n".join(lines) + "\n"


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _os_release() -> str | None:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')[:100]
    return None
