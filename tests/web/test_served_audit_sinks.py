"""``gwvault serve`` with audit sinks, end to end: a block syslog sink (the machine's
real rsyslogd over TLS) takes each request's entries inside its commit, and the
server's housekeeper sends a buffer webhook sink the same entries behind them.
Both copies hold every entry of the run, in order, and verify against the trail."""

from __future__ import annotations

import http.client
import json
import signal
import time
from collections.abc import Callable

from tests.audit_collector import AuditCollector
from tests.rsyslog_fixtures import RsyslogServer
from tests.web.api_helpers import API, new_token, sealed_body
from tests.web.served_process import CLIENT_TLS, gwvault_serve
from tests.web_fixtures import WebVault
from vault.audit.sinks.against import verify_against
from vault.audit.sinks.config import syslog_config
from vault.audit.sinks.registry import AuditSinkService
from vault.notify.sink_config import webhook_config


def _put(port: int, token: str, name: str, body: dict[str, str]) -> int:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=CLIENT_TLS, timeout=30)
    try:
        connection.request(
            "PUT", f"{API}/credentials/{name}", body=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _until(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_served_run_reaches_a_block_syslog_sink_and_a_buffer_webhook_in_order(
    web_vault: WebVault, rsyslogd: RsyslogServer, audit_collector: AuditCollector
) -> None:
    token = new_token(web_vault, "admin")
    with web_vault.gateway() as gateway:
        tail = gateway.store.audit_tail()
        assert tail is not None
        sinks = AuditSinkService(gateway)
        sinks.add("syslog", syslog_config(f"127.0.0.1:{rsyslogd.port}", rsyslogd.ca_pem), "block")
        config = webhook_config(audit_collector.url, audit_collector.ca.pem)
        sinks.add("archive", config, "buffer")
    names = [f"db-{n}" for n in range(6)]
    bodies = {name: sealed_body(web_vault, name) for name in names}
    with gwvault_serve(web_vault.data_dir, wait_ready=True) as (process, port):
        assert all(_put(port, token, name, bodies[name]) == 201 for name in names)
        with web_vault.gateway() as gateway:
            local = [e.seq for e in gateway.store.audit_entries(after_seq=tail[0])]
        # The housekeeper sends the buffer sink within its period (5 s).
        assert _until(lambda: audit_collector.entry_seqs()[-1:] == local[-1:]), "not sent"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    with web_vault.gateway() as gateway:
        served = [e.seq for e in gateway.store.audit_entries(after_seq=tail[0])]
        rsyslogd.wait_for_records(len(served))
        for copy in (rsyslogd.log_path, audit_collector.path):
            report = verify_against(gateway.store, gateway.gateway_id, copy)
            assert report.ok and not report.notes, (copy, report.summary(), report.notes)
    # Every entry of the run (the server's start and stop too), each once, in order.
    assert [r["seq"] for r in rsyslogd.records() if r["type"] == "entry"] == served
    # The buffer sink (added second: it starts at its own entry), what it was
    # sent before the stop, in order, each once.
    received = audit_collector.entry_seqs()
    assert received == served[1 : 1 + len(received)] and received[-1] >= local[-1]
    actions = [r["action"] for r in rsyslogd.records() if r["type"] == "entry"]
    assert actions.count("credential.created") == len(names)
