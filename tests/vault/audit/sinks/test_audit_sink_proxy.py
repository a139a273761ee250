"""The audit webhook sink through the admin's proxy (a real tinyproxy): the
collector is still verified end to end inside the tunnel, and a block sink
whose proxy refuses fails the change."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_keys.secret import Secret
from tests.audit_collector import AuditCollector
from tests.conftest import make_context
from tests.proxy_fixtures import TinyProxy
from tests.tls_certificates import CertificateAuthority
from tests.vault.audit.sinks.test_audit_sinks import _put, _tail
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.registry import AuditSinkService
from vault.gateway import Gateway
from vault.notify.sink_config import webhook_config
from vault.proxy.stored import set_proxy


def _through(data_dir: Path, proxy: TinyProxy, password: str) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        set_proxy(gateway, "custom", url=proxy.url, user=proxy.user,
                  password=Secret.from_text(password))  # fmt: skip


def _sink(data_dir: Path, collector: AuditCollector, ca: CertificateAuthority) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        AuditSinkService(gateway).add("siem", webhook_config(collector.url, ca.pem), "block")


def test_a_block_webhook_sink_sends_through_the_proxy(
    data_dir: Path, audit_collector: AuditCollector, tinyproxy: TinyProxy
) -> None:
    before = tinyproxy.tunnels_to(audit_collector.port)
    _through(data_dir, tinyproxy, tinyproxy.password)
    _sink(data_dir, audit_collector, audit_collector.ca)
    _put(data_dir, "sales")
    assert audit_collector.entry_seqs()[-1] == _tail(data_dir)
    assert tinyproxy.tunnels_to(audit_collector.port) == before + 1  # one kept tunnel


def test_through_the_proxy_an_impersonating_collector_or_a_refused_login_fails_closed(
    data_dir: Path,
    audit_collector: AuditCollector,
    untrusted_ca: CertificateAuthority,
    tinyproxy: TinyProxy,
) -> None:
    _through(data_dir, tinyproxy, tinyproxy.password)
    tail = _tail(data_dir)
    with pytest.raises(AuditSinkUnavailableError, match="TLS handshake failed"):
        _sink(data_dir, audit_collector, untrusted_ca)
    assert _tail(data_dir) == tail and audit_collector.entry_seqs() == []
    wrong = "CANARY-wrong-proxy-pw"
    _through(data_dir, tinyproxy, wrong)
    tail = _tail(data_dir)
    with pytest.raises(AuditSinkUnavailableError) as refused:
        _sink(data_dir, audit_collector, audit_collector.ca)
    assert "proxy" in str(refused.value) and wrong not in str(refused.value)
    assert _tail(data_dir) == tail and audit_collector.entry_seqs() == []
