"""``gwvault audit sink add|list|remove|send``, ``audit verify --against`` and the
sinks in ``status``, against a real HTTPS collector."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audit_collector import AuditCollector
from tests.vault.cli.in_process import Cli


@pytest.fixture
def cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    umask = os.umask(0o077)  # main() sets the command's umask: give the test's back after
    try:
        yield Cli(data_dir, capsys)
    finally:
        os.umask(umask)


@pytest.fixture
def ca_file(audit_collector: AuditCollector, tmp_path: Path) -> Path:
    path = tmp_path / "collector-ca.pem"
    path.write_text(audit_collector.ca.pem)
    path.chmod(0o644)
    return path


def test_a_sink_is_added_listed_verified_against_and_removed(
    cli: Cli, audit_collector: AuditCollector, ca_file: Path
) -> None:
    code, out, _ = cli("audit", "sink", "add", "siem", "--webhook", audit_collector.url,
                       "--ca-file", ca_file, "--policy", "buffer")  # fmt: skip
    assert code == 0 and "siem (webhook, buffer)" in out
    (listed,) = cli.json("audit", "sink", "list")
    assert (listed["name"], listed["policy"], listed["behind"]) == ("siem", "buffer", 1)
    (shown,) = cli.json("status")["audit_sinks"]
    assert shown["behind"] == 1 and shown["checked"] is False
    assert cli.json("audit", "sink", "send") == {"sent": {"siem": 1}, "failing": {}}
    code, out, _ = cli("audit", "verify", "--against", audit_collector.path)
    assert code == 0 and "against the sink's copy: OK: 1 entries match" in out
    verdict = cli.json("audit", "verify", "--against", audit_collector.path)
    assert verdict["ok"] and verdict["against"]["ok"] and verdict["against"]["sink_last"]
    code, out, _ = cli("audit", "sink", "remove", "siem", "--yes")
    assert code == 0 and cli.json("audit", "sink", "list") == []


def test_a_failing_buffer_sink_is_a_warning_in_status_and_send_exits_1(
    cli: Cli, audit_collector: AuditCollector, ca_file: Path
) -> None:
    cli("audit", "sink", "add", "siem", "--webhook", audit_collector.url, "--ca-file", ca_file,
        "--policy", "buffer")  # fmt: skip
    audit_collector.stop()
    code, _, err = cli("audit", "sink", "send")
    assert code == 1 and "could not be sent" in err
    code, out, err = cli("status")
    assert code == 0 and "siem (buffer, webhook): 1 entries behind" in out
    assert "warning: audit sink siem (buffer) has failed since" in err


def test_a_block_sink_down_fails_a_command_with_one_line_and_exit_1(
    cli: Cli, audit_collector: AuditCollector, ca_file: Path
) -> None:
    cli("audit", "sink", "add", "siem", "--webhook", audit_collector.url, "--ca-file", ca_file)
    audit_collector.stop()
    code, _, err = cli("policy", "set", "--credentials-retention", "10")
    assert code == 1 and "audit sink siem (policy block)" in err and "nothing was changed" in err
    assert cli.json("policy", "show")["credentials_retention_days"] != 10


def test_a_rolled_back_copy_fails_verify_against(
    cli: Cli, audit_collector: AuditCollector, ca_file: Path, tmp_path: Path
) -> None:
    cli("audit", "sink", "add", "siem", "--webhook", audit_collector.url, "--ca-file", ca_file)
    forged = tmp_path / "longer.jsonl"
    # The sink's copy runs past the local trail: as after a rollback.
    line = audit_collector.path.read_bytes().splitlines()[-1]
    forged.write_bytes(line + b"\n" + line.replace(b'"seq":', b'"seq":9') + b"\n")
    code, _, err = cli("audit", "verify", "--against", forged)
    assert code == 1 and "cut off or rolled back" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--syslog", "collector.internal:6514"], "--syslog needs --ca-file"),
        (["--syslog", "collector.internal:99999", "--ca-file", "CA"], "port is 1 to 65535"),
        (["--syslog", "::1:6514", "--ca-file", "CA"], "[address]:port"),
        (["--syslog", "bad host:1", "--ca-file", "CA"], "printable ASCII"),
        (["--syslog", "bad_host!:1", "--ca-file", "CA"], "host name"),
        (["--webhook", "http://collector.internal/audit"], "https://"),
        (["--webhook", "https://u:p@collector.internal/"], "user name or password"),
        (["--webhook", "https://c.internal/", "--policy", "maybe"], "invalid choice"),
        (["--webhook", "https://c.internal/", "--syslog", "c:1"], "not allowed with"),
    ],
)
def test_hostile_sink_flags_get_one_clear_error_and_add_nothing(
    cli: Cli, ca_file: Path, flags: list[str], message: str
) -> None:
    code, _, err = cli("audit", "sink", "add", "siem",
                       *[str(ca_file) if f == "CA" else f for f in flags])  # fmt: skip
    assert code == 2 and message in err, err
    assert cli.json("audit", "sink", "list") == []


def test_a_ca_file_that_is_a_key_is_refused(cli: Cli, tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    code, _, err = cli("audit", "sink", "add", "siem", "--syslog", "c.internal", "--ca-file", key)
    assert code == 2 and "PRIVATE KEY" not in err and "MIIB" not in err
