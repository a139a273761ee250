"""Webhooks through the admin's proxy (a real tinyproxy): tunnelled, still verified end-to-end.

The proxy's log shows the CONNECT; the receiver's certificate is still checked
against the sink's CA inside the tunnel; a wrong proxy password is a clear
retry that names the 407 and never the password; clearing the proxy goes
back to direct.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agent_keys.secret import Secret
from tests.proxy_fixtures import TinyProxy
from tests.store_engines import EngineVaults
from tests.tls_certificates import CertificateAuthority
from tests.vault.notify.conftest import WebhookReceiver
from vault.gateway import Gateway
from vault.notify.delivery import deliver_due, send_test_event
from vault.notify.events import raise_event
from vault.notify.outcome import Delivered, Retry
from vault.notify.sink_config import webhook_config
from vault.notify.sinks import SinkService
from vault.proxy.stored import clear_proxy, set_proxy

KEY = Secret.from_text("whsec-test-key-0123456789abcdef")


def _through(gateway: Gateway, proxy: TinyProxy, password: str | None = None) -> None:
    set_proxy(gateway, "custom", url=proxy.url, user=proxy.user,
              password=Secret.from_text(password or proxy.password))  # fmt: skip


def _hook_through(
    gateway: Gateway, receiver: WebhookReceiver, ca: CertificateAuthority, proxy: TinyProxy
) -> tuple[SinkService, int]:
    """A webhook sink checked against ``ca``, the proxy set, and its tunnels so far."""
    service = SinkService(gateway)
    service.add("hook", webhook_config(receiver.url, ca.pem), KEY)
    _through(gateway, proxy)
    return service, proxy.tunnels_to(_port(receiver))


def _port(receiver: WebhookReceiver) -> int:
    return urlsplit(receiver.url).port or 443


def test_a_webhook_goes_through_the_proxy_and_back_to_direct_once_cleared(
    gateway: Gateway, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority,
    tinyproxy: TinyProxy,
) -> None:  # fmt: skip
    service, before = _hook_through(gateway, webhook_receiver, trusted_ca, tinyproxy)
    assert isinstance(send_test_event(gateway, service, "hook"), Delivered)
    assert tinyproxy.tunnels_to(_port(webhook_receiver)) == before + 1
    assert len(webhook_receiver.requests) == 1
    clear_proxy(gateway)
    assert isinstance(send_test_event(gateway, service, "hook"), Delivered)
    assert tinyproxy.tunnels_to(_port(webhook_receiver)) == before + 1  # direct this time
    assert len(webhook_receiver.requests) == 2


def test_an_impersonating_receiver_fails_through_the_proxy(
    gateway: Gateway, webhook_receiver: WebhookReceiver, untrusted_ca: CertificateAuthority,
    tinyproxy: TinyProxy,
) -> None:  # fmt: skip
    service, before = _hook_through(gateway, webhook_receiver, untrusted_ca, tinyproxy)
    outcome = send_test_event(gateway, service, "hook")
    assert isinstance(outcome, Retry) and "TLS handshake failed" in outcome.reason
    assert tinyproxy.tunnels_to(_port(webhook_receiver)) == before + 1
    assert webhook_receiver.requests == []


def test_a_wrong_proxy_password_is_a_clear_retry_and_shows_nowhere(  # noqa: PLR0917 - pytest fixtures
    gateway: Gateway, data_dir: Path, vaults: EngineVaults, webhook_receiver: WebhookReceiver,
    trusted_ca: CertificateAuthority, tinyproxy: TinyProxy,
) -> None:  # fmt: skip
    wrong = "wrong-" + tinyproxy.password
    service = SinkService(gateway)
    service.add("hook", webhook_config(webhook_receiver.url, trusted_ca.pem), KEY)
    _through(gateway, tinyproxy, wrong)
    outcome = send_test_event(gateway, service, "hook")
    assert isinstance(outcome, Retry) and "wants a login" in outcome.reason, outcome
    assert wrong not in outcome.reason and webhook_receiver.requests == []
    trail = " ".join(f"{e.details}" for e in gateway.store.audit_events())
    assert "wants a login" in trail and wrong not in trail
    gateway.close()
    with vaults.sql(data_dir) as db:
        assert not db.holds(wrong.encode())


@pytest.mark.parametrize("mode", ["custom", "system"])
def test_a_proxy_that_is_down_is_a_retry_naming_it(  # noqa: PLR0917 - pytest fixtures
    gateway: Gateway, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority,
    closed_tcp_port: int, monkeypatch: pytest.MonkeyPatch, mode: str,
) -> None:  # fmt: skip
    service = SinkService(gateway)
    service.add("hook", webhook_config(webhook_receiver.url, trusted_ca.pem), KEY)
    url = f"http://127.0.0.1:{closed_tcp_port}"
    if mode == "system":
        monkeypatch.setenv("HTTPS_PROXY", url)
        set_proxy(gateway, "system")
    else:
        set_proxy(gateway, "custom", url=url)
    outcome = send_test_event(gateway, service, "hook")
    assert isinstance(outcome, Retry)
    assert f"cannot reach the proxy 127.0.0.1:{closed_tcp_port}" in outcome.reason
    assert webhook_receiver.requests == []


def test_a_tampered_proxy_row_stops_delivery_instead_of_going_direct(
    gateway: Gateway, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority
) -> None:
    SinkService(gateway).add("hook", webhook_config(webhook_receiver.url, trusted_ca.pem), KEY)
    set_proxy(gateway, "custom", url="http://proxy.example.org:3128")
    raise_event(gateway, "credential.expired", "sales")
    with gateway.store.write():  # a database writer, without the key
        gateway.store.set_setting("proxy", '{"mode":"system"}')
    report = deliver_due(gateway)
    assert report.delivered == 0 and "changed outside gwvault" in report.errors[0]
    assert webhook_receiver.requests == []
    refused = [e for e in gateway.store.audit_events() if e.action == "integrity.row-refused"]
    assert [e.target for e in refused] == ["settings:proxy"]  # recorded once
