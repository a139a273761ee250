"""A syslog audit sink end to end: a vault, its block sink, and the machine's real rsyslogd.

The transport keeps its TLS connection across commits, so the case that
matters is the one the webhook cannot have: the server stops between two
changes, and the next change must fail (nothing changed) rather than write
its entries into the dead connection and commit.  Runs on SQLite only: the
engine plays no part in what is sent.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.errors import NotFoundError
from tests.conftest import make_context
from tests.rsyslog_fixtures import RsyslogServer
from tests.vault.audit.sinks.test_audit_sinks import _local_seqs, _put, _tail
from tests.vault.cli.gwvault_process import GWVAULT
from vault.audit.sinks.against import verify_against
from vault.audit.sinks.config import syslog_config
from vault.audit.sinks.delivery import deliver_buffered
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.registry import AuditSinkService
from vault.credentials import CredentialService
from vault.gateway import Gateway


def _add_syslog_sink(data_dir: Path, server: RsyslogServer, policy: str) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        config = syslog_config(f"127.0.0.1:{server.port}", server.ca_pem)
        AuditSinkService(gateway).add("syslog", config, policy)


def _entry_seqs(server: RsyslogServer) -> list[int]:
    return [r["seq"] for r in server.records() if r["type"] == "entry"]


def test_a_syslog_block_sink_receives_every_entry_and_its_file_verifies(
    data_dir: Path, rsyslogd: RsyslogServer
) -> None:
    before = _tail(data_dir)
    _add_syslog_sink(data_dir, rsyslogd, "block")
    for name in ("sales", "hr"):
        _put(data_dir, name)
    local = _local_seqs(data_dir, before)
    rsyslogd.wait_for_records(len(local))
    assert _entry_seqs(rsyslogd) == local
    with Gateway.open(data_dir, make_context()) as gateway:
        report = verify_against(gateway.store, gateway.gateway_id, rsyslogd.log_path)
    assert report.ok and report.compared == len(local), report.summary()


def test_with_the_syslog_server_stopped_the_next_change_fails_and_changes_nothing(
    data_dir: Path, rsyslogd: RsyslogServer
) -> None:
    before = _tail(data_dir)
    _add_syslog_sink(data_dir, rsyslogd, "block")
    _put(data_dir, "sales")  # the sink's connection is made, and kept
    tail = _tail(data_dir)
    rsyslogd.wait_for_records(len(_local_seqs(data_dir, before)))
    received = _entry_seqs(rsyslogd)
    rsyslogd.stop()
    with pytest.raises(AuditSinkUnavailableError, match=f"127.0.0.1:{rsyslogd.port}"):
        _put(data_dir, "hr")
    with Gateway.open(data_dir, make_context()) as gateway, pytest.raises(NotFoundError):
        CredentialService(gateway).get("hr")
    assert _tail(data_dir) == tail and _entry_seqs(rsyslogd) == received
    rsyslogd.start()  # back on the same port: the next change reconnects and goes through
    _put(data_dir, "hr")
    rsyslogd.wait_for_records(len(received) + 1)
    assert _entry_seqs(rsyslogd)[-1] == _tail(data_dir)


def test_a_syslog_buffer_sink_stopped_and_restarted_receives_every_entry_in_order(
    data_dir: Path, rsyslogd: RsyslogServer
) -> None:
    before = _tail(data_dir)
    _add_syslog_sink(data_dir, rsyslogd, "buffer")
    with Gateway.open(data_dir, make_context()) as gateway:
        assert deliver_buffered(gateway).sent == {"syslog": 1}
    rsyslogd.wait_for_records(1)
    rsyslogd.stop()
    for name in ("sales", "hr", "ops"):
        _put(data_dir, name)  # the outage stops no change
    with Gateway.open(data_dir, make_context()) as gateway:
        assert "syslog" in deliver_buffered(gateway).failing
    rsyslogd.start()
    with Gateway.open(data_dir, make_context()) as gateway:
        deliver_buffered(gateway)
    local = _local_seqs(data_dir, before)
    rsyslogd.wait_for_records(len(local))
    assert _entry_seqs(rsyslogd) == local


def test_a_rolled_back_tail_is_caught_against_rsyslogs_file(
    data_dir: Path,
    rsyslogd: RsyslogServer,
    copy_vault: Callable[[Path, Path], Path],
    tmp_path: Path,
) -> None:
    before = _tail(data_dir)
    _add_syslog_sink(data_dir, rsyslogd, "block")
    _put(data_dir, "sales")
    rolled_back = copy_vault(data_dir, tmp_path / "earlier")  # the copy put back later
    _put(data_dir, "hr")
    rsyslogd.wait_for_records(len(_local_seqs(data_dir, before)))
    with Gateway.open(rolled_back, make_context()) as gateway:
        report = verify_against(gateway.store, gateway.gateway_id, rsyslogd.log_path)
    assert not report.ok and "cut off or rolled back" in (report.problem or "")


def test_a_command_that_exits_right_after_its_change_leaves_no_entry_behind(
    data_dir: Path, rsyslogd: RsyslogServer
) -> None:
    # A CLI command sends its entries and exits at once: its TLS connection must
    # end with a close the server reads to the end, not a reset that can drop
    # what the server had not read yet.
    before = _tail(data_dir)
    _add_syslog_sink(data_dir, rsyslogd, "block")
    for days in ("10", "11", "12"):
        done = subprocess.run(
            [str(GWVAULT), "--data-dir", str(data_dir), "policy", "set",
             "--credentials-retention", days],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    local = _local_seqs(data_dir, before)
    rsyslogd.wait_for_records(len(local))
    assert _entry_seqs(rsyslogd) == local
    assert b"without TLS close" not in rsyslogd.output_path.read_bytes()
