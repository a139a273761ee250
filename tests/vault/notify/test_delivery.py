"""Events reach the admin's sinks: a real HTTPS webhook and a real SMTP server with STARTTLS.

The issue's promise: a status change reaches the webhook and the SMTP server,
with no secret in either.  Retries run on an injected clock (no sleeping);
every send is a real TLS connection on loopback.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_keys.secret import Secret
from tests.conftest import CANARY
from tests.tls_certificates import CertificateAuthority
from tests.vault.notify.conftest import MovingClock, SmtpReceiver, WebhookReceiver
from tests.web_fixtures import WebVault
from vault.context import RequestContext
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.notify.delivery import GIVE_UP_AFTER, backoff_seconds, deliver_due, send_test_event
from vault.notify.events import raise_event
from vault.notify.outcome import Delivered, Retry
from vault.notify.sink_config import email_config, webhook_config
from vault.notify.sinks import SinkService
from vault.notify.webhook import signature
from web.housekeeping import alongside, audit_housekeeper, notification_deliverer

README = Path(__file__).resolve().parents[3] / "README.md"
KEY = Secret.from_text("whsec-test-key-0123456789abcdef")


@pytest.fixture
def clock() -> MovingClock:
    return MovingClock()


@pytest.fixture
def vault(data_dir: Path, clock: MovingClock) -> Iterator[Gateway]:
    context = RequestContext(actor="test:admin", channel="cli", clock=clock)
    with Gateway.open(data_dir, context) as opened:
        yield opened


def add_webhook(vault: Gateway, receiver: WebhookReceiver, ca: CertificateAuthority) -> None:
    SinkService(vault).add("hook", webhook_config(receiver.url, ca.pem), KEY)


def add_email(vault: Gateway, receiver: SmtpReceiver, ca: CertificateAuthority) -> None:
    config = email_config(receiver.host, receiver.port, "gwvault@example.org",
                          ["ops@example.org", "dba@example.org"], user=receiver.user,
                          ca_pem=ca.pem)  # fmt: skip
    SinkService(vault).add("mail", config, Secret.from_text(receiver.password))


def status_changed(vault: Gateway, name: str = "sales") -> int:
    return raise_event(
        vault, "credential.status-changed", name, previous="ok", reason="auth_failed"
    )


def audit(vault: Gateway, prefix: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(e.action, e.target, json.loads(e.details)) for e in vault.store.audit_events()
            if e.action.startswith(prefix)]  # fmt: skip


def readme_verifier() -> Any:
    """The verifier the README gives receivers, run as written."""
    text = README.read_text()
    code = re.search(r"<!-- webhook verifier -->\n```python\n(.*?)```", text, re.S)
    assert code is not None, "README: the webhook verifier block"
    assert len(code.group(1).strip().splitlines()) <= 12
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)  # noqa: S102 - the README's own example
    return scope["verify"]


def test_a_webhook_receives_the_event_signed_as_the_readme_verifies(
    vault: Gateway, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority,
    clock: MovingClock,
) -> None:  # fmt: skip
    clock.now = datetime.datetime.now(datetime.UTC)  # the verifier checks age on the real clock
    add_webhook(vault, webhook_receiver, trusted_ca)
    seq = status_changed(vault)

    report = deliver_due(vault)

    assert (report.delivered, report.retrying, report.failed) == (1, 0, 0)
    [request] = webhook_receiver.requests
    assert request.path == "/hooks/gwvault"
    body = json.loads(request.body)
    assert body == {"kind": "credential.status-changed", "credential": "sales",
                    "at": body["at"], "audit_seq": seq, "gateway_id": vault.gateway_id,
                    "details": {"previous": "ok", "reason": "auth_failed"}}  # fmt: skip
    assert request.headers["X-Gwvault-Event"] == "credential.status-changed"
    assert request.headers["X-Gwvault-Delivery"].endswith(":1")
    verify = readme_verifier()
    assert verify(KEY.reveal().decode(), request.headers, request.body)
    assert not verify("another-key-0123456789", request.headers, request.body)
    assert not verify(KEY.reveal().decode(), request.headers, request.body + b" ")
    assert audit(vault, "notify.delivered")[0][1:] == (
        "hook", {"sink_id": audit(vault, "notify.sink-added")[0][2]["sink_id"], "event_id": 1,
                 "kind": "credential.status-changed", "credential": "sales"},
    )  # fmt: skip
    # Delivered once: the next pass has nothing to send.
    assert deliver_due(vault).delivered == 0 and len(webhook_receiver.requests) == 1


def test_503_twice_then_accepted_is_delivered_once_and_in_order(
    vault: Gateway, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority,
    clock: MovingClock,
) -> None:  # fmt: skip
    add_webhook(vault, webhook_receiver, trusted_ca)
    webhook_receiver.answers = [(503, {}), (503, {"Retry-After": "120"})]
    status_changed(vault, "first")
    status_changed(vault, "second")

    assert deliver_due(vault).retrying == 1  # the first event waits; the second behind it
    assert deliver_due(vault).retrying == 0 and len(webhook_receiver.requests) == 1  # not due yet
    clock.advance(seconds=backoff_seconds(1, 1.0))
    assert deliver_due(vault).retrying == 1
    row = vault.store.rows("SELECT attempts, next_attempt_at FROM notify_deliveries", [])[0]
    assert row["attempts"] == 2
    assert datetime.datetime.fromisoformat(
        row["next_attempt_at"]
    ) == clock.now + datetime.timedelta(seconds=120)  # the server's Retry-After
    clock.advance(seconds=120)
    report = deliver_due(vault)

    assert (report.delivered, report.retrying, report.failed) == (2, 0, 0)
    credentials = [json.loads(r.body)["credential"] for r in webhook_receiver.requests]
    assert credentials == ["first", "first", "first", "second"]
    deliveries = [r.headers["X-Gwvault-Delivery"] for r in webhook_receiver.requests]
    assert len(set(deliveries[:3])) == 1  # one delivery id across the retries
    assert [d["credential"] for _, _, d in audit(vault, "notify.delivered")] == ["first", "second"]


def test_a_4xx_is_not_retried_and_is_recorded_as_failed(
    vault: Gateway, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority,
    clock: MovingClock,
) -> None:  # fmt: skip
    add_webhook(vault, webhook_receiver, trusted_ca)
    webhook_receiver.answers = [(400, {}), (307, {"Location": "https://elsewhere.example/"})]
    status_changed(vault, "first")
    status_changed(vault, "second")

    report = deliver_due(vault)

    assert (report.delivered, report.retrying, report.failed) == (0, 0, 2)
    [(_, sink, first), (_, _, second)] = audit(vault, "notify.failed")
    assert sink == "hook" and first["credential"] == "first"
    assert first["reason"] == "refused: the webhook refused the event (HTTP 400)"
    assert "redirect (HTTP 307)" in second["reason"]
    clock.advance(days=2)
    assert deliver_due(vault).failed == 0 and len(webhook_receiver.requests) == 2


def test_an_unreachable_webhook_is_retried_with_backoff_then_given_up_after_a_day(
    vault: Gateway, trusted_ca: CertificateAuthority, clock: MovingClock, closed_tcp_port: int
) -> None:
    config = webhook_config(f"https://127.0.0.1:{closed_tcp_port}/hook", trusted_ca.pem)
    SinkService(vault).add("hook", config, KEY)
    status_changed(vault)
    waits = []
    while not audit(vault, "notify.failed"):
        assert deliver_due(vault).delivered == 0
        row = vault.store.rows("SELECT next_attempt_at, last_error FROM notify_deliveries", [])[0]
        if row["next_attempt_at"] is None:
            break
        next_at = datetime.datetime.fromisoformat(row["next_attempt_at"])
        waits.append((next_at - clock.now).total_seconds())
        assert row["last_error"] == f"cannot reach the webhook at 127.0.0.1:{config.port}"
        clock.now = next_at
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60 and max(waits) <= 3600
    assert sum(waits) >= GIVE_UP_AFTER.total_seconds() - 3600
    [(_, _, failed)] = audit(vault, "notify.failed")
    assert failed["reason"].startswith("gave up after 24 h: cannot reach")


def test_a_sink_added_later_does_not_receive_older_events(
    vault: Gateway, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority
) -> None:
    status_changed(vault, "before")
    add_webhook(vault, webhook_receiver, trusted_ca)
    status_changed(vault, "after")
    assert deliver_due(vault).delivered == 1
    assert [json.loads(r.body)["credential"] for r in webhook_receiver.requests] == ["after"]


def test_a_webhook_whose_certificate_does_not_verify_gets_nothing_readable(
    vault: Gateway, webhook_receiver: WebhookReceiver, untrusted_ca: CertificateAuthority
) -> None:
    SinkService(vault).add("hook", webhook_config(webhook_receiver.url, untrusted_ca.pem), KEY)
    status_changed(vault)
    assert deliver_due(vault).retrying == 1
    assert webhook_receiver.requests == []
    row = vault.store.rows("SELECT last_error FROM notify_deliveries", [])[0]
    assert "TLS handshake failed" in row["last_error"]


def test_email_arrives_after_starttls_and_auth(
    vault: Gateway, smtp_receiver: SmtpReceiver, trusted_ca: CertificateAuthority
) -> None:
    add_email(vault, smtp_receiver, trusted_ca)
    status_changed(vault)

    assert deliver_due(vault).delivered == 1

    [mail] = smtp_receiver.mails
    assert mail.over_tls and mail.authenticated and smtp_receiver.logins == ["tls"]
    assert mail.message["Subject"] == "[gwvault] credential sales: credential.status-changed"
    assert mail.message["To"] == "ops@example.org, dba@example.org"
    payload = mail.message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    text = payload.decode()
    assert "credential:  sales" in text and "reason: auth_failed" in text


def test_a_server_without_starttls_gets_nothing(
    vault: Gateway, smtp_without_starttls: SmtpReceiver, trusted_ca: CertificateAuthority
) -> None:
    add_email(vault, smtp_without_starttls, trusted_ca)
    status_changed(vault)

    assert deliver_due(vault).retrying == 1
    assert smtp_without_starttls.mails == [] and smtp_without_starttls.logins == []
    row = vault.store.rows("SELECT last_error FROM notify_deliveries", [])[0]
    assert "does not offer STARTTLS" in row["last_error"]


def test_notify_test_sends_now_and_says_what_happened(
    vault: Gateway, webhook_receiver: WebhookReceiver, smtp_without_starttls: SmtpReceiver,
    trusted_ca: CertificateAuthority,
) -> None:  # fmt: skip
    add_webhook(vault, webhook_receiver, trusted_ca)
    add_email(vault, smtp_without_starttls, trusted_ca)
    service = SinkService(vault)

    assert send_test_event(vault, service, "hook") == Delivered("HTTP 200")
    assert isinstance(send_test_event(vault, service, "mail"), Retry)

    [request] = webhook_receiver.requests
    assert json.loads(request.body)["kind"] == "notify.test"
    assert request.headers["X-Gwvault-Signature"] == signature(
        KEY, request.headers["X-Gwvault-Timestamp"], request.body
    )
    assert [(t, d["test"]) for _, t, d in audit(vault, "notify.delivered")] == [("hook", True)]
    assert [t for _, t, _ in audit(vault, "notify.failed")] == ["mail"]
    assert vault.store.rows("SELECT count(*) AS n FROM notify_events", [])[0]["n"] == 0


def test_a_status_change_reaches_the_webhook_and_the_smtp_server_without_the_secret(
    vault: Gateway, webhook_receiver: WebhookReceiver, smtp_receiver: SmtpReceiver,
    trusted_ca: CertificateAuthority,
) -> None:  # fmt: skip
    """Done when: a status change reaches the webhook and the SMTP server."""
    payload = CredentialPayload("basic", "alice", Secret.from_text(CANARY))
    CredentialService(vault).put(
        "sales", DataSource("postgresql", "db.example:5432", "sales"), payload
    )
    add_webhook(vault, webhook_receiver, trusted_ca)
    add_email(vault, smtp_receiver, trusted_ca)
    status_changed(vault)

    report = deliver_due(vault)

    assert (report.delivered, report.retrying, report.failed) == (2, 0, 0)
    [request] = webhook_receiver.requests
    [mail] = smtp_receiver.mails
    assert json.loads(request.body)["credential"] == "sales"
    assert mail.message["Subject"].startswith("[gwvault] credential sales:")
    for sent in (request.body, json.dumps(request.headers).encode(), mail.raw):
        assert CANARY.encode() not in sent
        assert KEY.reveal() not in sent and smtp_receiver.password.encode() not in sent


def test_the_servers_housekeeper_delivers_beside_its_audit_work(
    web_vault: WebVault, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority
) -> None:
    with web_vault.gateway() as gateway:
        add_webhook(gateway, webhook_receiver, trusted_ca)
        status_changed(gateway)
    stop = threading.Event()
    stop.set()  # each loop runs once, then its wait returns at once
    alongside(audit_housekeeper(web_vault.handle), notification_deliverer(web_vault.handle))(stop)
    [request] = webhook_receiver.requests
    assert json.loads(request.body)["credential"] == "sales"
    with web_vault.gateway() as gateway:
        [(_, actor)] = [(e.action, e.actor) for e in gateway.store.audit_events()
                        if e.action == "notify.delivered"]  # fmt: skip
    assert actor == "gwvault:serve"


def test_the_vault_is_not_held_while_a_webhook_answers_and_a_claimed_event_goes_once(
    vault: Gateway, data_dir: Path, webhook_receiver: WebhookReceiver,
    trusted_ca: CertificateAuthority, clock: MovingClock,
) -> None:  # fmt: skip
    add_webhook(vault, webhook_receiver, trusted_ca)
    status_changed(vault)
    beside: list[tuple[int, int]] = []

    def another_pass_meanwhile() -> None:
        # Another process (a `notify deliver` beside the server) while the first
        # one waits for the answer: it can write, and finds the event claimed.
        context = RequestContext(actor="test:other", channel="cli", clock=clock)
        with Gateway.open(data_dir, context) as other:
            if not beside:
                status_changed(other, "meanwhile")
            report = deliver_due(other)
            beside.append((report.delivered, report.retrying))

    webhook_receiver.while_answering = another_pass_meanwhile
    assert deliver_due(vault).delivered == 2  # the first event, then the one raised meanwhile
    assert beside == [(0, 0), (0, 0)]
    assert [json.loads(r.body)["credential"] for r in webhook_receiver.requests] == [
        "sales", "meanwhile"
    ]  # fmt: skip
