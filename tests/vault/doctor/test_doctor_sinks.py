"""The doctor's audit sinks check against a real HTTPS collector: none is a
warning, and so is a buffer sink that fails (named, with the command to run)."""

from __future__ import annotations

from pathlib import Path

from agent_keys.secret import Secret
from tests.audit_collector import AuditCollector
from tests.conftest import make_context
from vault.access.accounts import Accounts
from vault.audit.sinks.delivery import deliver_buffered
from vault.audit.sinks.registry import AuditSinkService
from vault.doctor.checks import DoctorSubject
from vault.doctor.sinks import sinks_check
from vault.gateway import Gateway
from vault.keys.keystore_binding import no_pin
from vault.notify.sink_config import webhook_config

PASSWORD = "correct horse battery staple 7"


def _check(data_dir: Path) -> tuple[str, str, str]:
    subject = DoctorSubject(data_dir, no_pin, lambda path, pin: Gateway.open(path, make_context()))
    try:
        found = sinks_check(subject)
    finally:
        subject.close()
    return found.status, found.summary, found.fix


def test_no_sink_warns_and_a_failing_sink_is_named_with_the_command_to_run(
    data_dir: Path, audit_collector: AuditCollector
) -> None:
    policy = "buffer"  # a block sink's outage refuses the change and records no failure
    found = _check(data_dir)
    assert found[0] == "warn" and "gwvault audit sink add" in found[2]
    with Gateway.open(data_dir, make_context()) as gateway:
        config = webhook_config(audit_collector.url, audit_collector.ca.pem)
        AuditSinkService(gateway).add("siem", config, policy)
        deliver_buffered(gateway)
    assert _check(data_dir)[:2] == ("ok", f"sending: siem ({policy}, 0 behind)")
    audit_collector.stop()
    with Gateway.open(data_dir, make_context()) as gateway:
        Accounts(gateway).add_user("eve", "auditor", Secret.from_text(PASSWORD))
        deliver_buffered(gateway)  # a buffer sink's failure is recorded as it is sent
    found = _check(data_dir)
    assert found[0] == "warn" and "siem" in found[1] and "failing since" in found[1]
    assert "gwvault audit sink send" in found[2]
