"""The admin's sinks as stored: checked going in, sealed at rest, secrets wrapped and never shown.

A database writer without the key can neither point notifications at a server
of theirs, swap a sink's CA, move a wrapped key to another sink, bring a
removed sink back, nor make the vault sign news it never raised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_keys.errors import ConflictError, IntegrityError, InvalidInputError
from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.store_engines import EngineVaults
from tests.tls_certificates import CertificateAuthority
from tests.vault.access.test_row_seal import _put_back, _row_copy
from tests.vault.cli.gwvault_process import private_file
from tests.vault.notify.conftest import WebhookReceiver
from vault.access.row_seal import TamperedRowError
from vault.cli.main import main
from vault.gateway import Gateway
from vault.notify.delivery import deliver_due
from vault.notify.events import raise_event
from vault.notify.sink_config import (
    check_sink_name,
    check_webhook_secret,
    email_config,
    webhook_config,
)
from vault.notify.sinks import SinkService

KEY = Secret.from_text("whsec-test-key-0123456789abcdef")


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.org/in",  # never in the clear
        "https://user:pw@hooks.example.org/in",  # no credentials in the URL
        "https://hooks.example.org/in#frag",
        "https:///in",
        "https://hooks.example.org:99999/in",
        "https://hooks.example.org:0/in",
        "https://hooks example.org/in",
        "https://hooks.example.org/in\r\nX-Injected: 1",
        "https://hooks.exämple.org/in",
        "ftp://hooks.example.org/in",
        "javascript:alert(1)",
        "https://" + "a" * 2050,
        "",
    ],
)
def test_a_webhook_url_that_is_not_plain_https_is_refused(url: str) -> None:
    with pytest.raises(InvalidInputError):
        webhook_config(url)


@pytest.mark.parametrize(
    ("host", "port", "sender", "to"),
    [
        ("smtp.example.org", 0, "a@example.org", ["b@example.org"]),
        ("smtp.example.org", 70000, "a@example.org", ["b@example.org"]),
        ("smtp example.org", 587, "a@example.org", ["b@example.org"]),
        ("smtp.example.org", 587, "a@example.org\r\nBcc: x@evil.example", ["b@example.org"]),
        ("smtp.example.org", 587, "a@example.org", ["b@example.org>, <x@evil.example"]),
        ("smtp.example.org", 587, "not-an-address", ["b@example.org"]),
        ("smtp.example.org", 587, "a@example.org", []),
        ("smtp.example.org", 587, "a@example.org", [f"b{i}@example.org" for i in range(21)]),
    ],
)
def test_an_email_sink_with_a_bad_host_port_or_address_is_refused(
    host: str, port: int, sender: str, to: list[str]
) -> None:
    with pytest.raises(InvalidInputError):
        email_config(host, port, sender, to)


@pytest.mark.parametrize("bad", ["", "-lead", "a b", "x" * 65, "a/b", "ü"])
def test_a_sink_name_is_a_plain_token(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        check_sink_name(bad)


@pytest.mark.parametrize("bad", [b"short", b"with space 0123456789", b"\xff" * 20, b"x" * 257])
def test_a_webhook_secret_is_long_printable_ascii(bad: bytes) -> None:
    with pytest.raises(InvalidInputError):
        check_webhook_secret(bad)


def test_a_ca_file_that_is_not_certificates_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        webhook_config("https://hooks.example.org/in", "-----BEGIN PRIVATE KEY-----\nAAAA\n")


@pytest.mark.contract
def test_sinks_are_stored_sealed_with_their_secrets_wrapped(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults
) -> None:
    service = SinkService(gateway)
    hook = service.add("hook", webhook_config("https://hooks.example.org/in"), None)
    mail = email_config("smtp.example.org", 587, "gw@example.org", ["ops@example.org"],
                        user="gw")  # fmt: skip
    service.add("mail", mail, Secret.from_text("smtp-CANARY-pw"))
    generated = hook.generated_secret
    assert generated is not None and len(generated.reveal()) == 64
    with pytest.raises(ConflictError, match="exists"):
        service.add("hook", webhook_config("https://other.example.org/"), KEY)
    with pytest.raises(InvalidInputError, match="go together"):
        service.add("nopw", mail, None)

    views = [sink.view() for sink in service.sinks()]
    assert [(v["name"], v["kind"], v["has_secret"]) for v in views] == [
        ("hook", "webhook", True), ("mail", "email", True),
    ]  # fmt: skip
    assert service.secret_of(service.sink("hook")) == generated
    shown = json.dumps(views)
    assert generated.reveal().decode() not in shown and "smtp-CANARY-pw" not in shown
    service.remove("hook")
    assert [s.name for s in service.sinks()] == ["mail"]
    assert gateway.store.rows("SELECT count(*) AS n FROM notify_deliveries", [])[0]["n"] == 1
    gateway.close()
    with vaults.sql(data_dir) as db:
        assert not db.holds(b"smtp-CANARY-pw") and not db.holds(generated.reveal())


def test_a_sink_pointed_elsewhere_in_the_database_is_refused(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults
) -> None:
    SinkService(gateway).add("hook", webhook_config("https://hooks.example.org/in"), KEY)
    raise_event(gateway, "credential.expired", "sales")
    gateway.close()
    evil = json.dumps(
        {"ca_pem": None, "url": "https://attacker.example/steal"}, separators=(",", ":")
    )
    with vaults.sql(data_dir, attacker=True) as db:
        db.execute("UPDATE notify_sinks SET config = ?", [evil])
    with Gateway.open(data_dir, make_context()) as reopened:
        with pytest.raises(TamperedRowError):
            SinkService(reopened).sinks()
        report = deliver_due(reopened)
        assert report.delivered == 0 and "changed outside gwvault" in report.errors[0]
        refused = [e for e in reopened.store.audit_events() if e.action == "integrity.row-refused"]
        assert len(refused) == 2


def test_a_wrapped_key_moved_to_another_sink_does_not_unwrap(gateway: Gateway) -> None:
    service = SinkService(gateway)
    service.add("one", webhook_config("https://one.example.org/"), KEY)
    service.add("two", webhook_config("https://two.example.org/"), Secret.from_text("x" * 20))
    with gateway.store.write():
        gateway.store.execute(
            "UPDATE notify_sinks SET wrapped_key = (SELECT wrapped_key FROM notify_sinks"
            " WHERE name = 'one') WHERE name = 'two'",
            [],
        )
    with pytest.raises(IntegrityError):
        service.secret_of(service.sink("two"))


def test_a_removed_sink_put_back_is_refused(gateway: Gateway, data_dir: Path) -> None:
    SinkService(gateway).add("hook", webhook_config("https://hooks.example.org/in"), KEY)
    copy = _row_copy(data_dir, "notify_sinks")
    SinkService(gateway).remove("hook")
    _put_back(data_dir, "notify_sinks", copy)
    with pytest.raises(TamperedRowError):
        SinkService(gateway).sink("hook")


def test_a_queued_event_no_audit_entry_vouches_for_is_never_sent(
    gateway: Gateway, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority
) -> None:
    SinkService(gateway).add("hook", webhook_config(webhook_receiver.url, trusted_ca.pem), KEY)
    seq = raise_event(gateway, "credential.expiring", "sales", days=7)
    at = "2026-12-06T09:00:00+00:00"
    forged = {"kind": "credential.expired", "credential": "ceo-mail", "at": at,
              "audit_seq": seq, "gateway_id": gateway.gateway_id, "details": {}}  # fmt: skip
    with gateway.store.write():
        gateway.store.execute(
            "INSERT INTO notify_events (kind, target, at, body) VALUES (?, ?, ?, ?)",
            ["credential.expired", "ceo-mail", at, json.dumps(forged)],
        )
        gateway.store.execute(
            "UPDATE notify_events SET body = replace(body, '\"days\":7', '\"days\":0')"
            " WHERE id = 1",
            [],
        )
    report = deliver_due(gateway)
    assert (report.delivered, report.failed) == (0, 2)
    assert webhook_receiver.requests == []
    refused = [
        e.target for e in gateway.store.audit_events() if e.action == "integrity.row-refused"
    ]
    assert refused == ["notify_events:1", "notify_events:2"]


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_adds_lists_and_removes_sinks_showing_a_generated_key_once(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, data_dir, "notify", "add", "webhook", "hook", "--url", "http://h.example/"
    )
    assert code == 2 and "https://" in err
    code, out, _ = run(
        capsys, data_dir, "notify", "add", "webhook", "hook", "--url", "https://h.example/in"
    )
    assert code == 0
    key = out.splitlines()[-1]
    assert len(key) == 64 and "shown once" in out
    password = private_file(tmp_path / "smtp-pw", "smtp-CANARY-pw\n")
    email = (
        "notify",
        "add",
        "email",
        "mail",
        "--host",
        "smtp.example.org",
        "--from",
        "gw@example.org",
    )
    code, out, err = run(capsys, data_dir, *email, "--to", "a@example.org,b@example.org",
                         "--user", "gw", "--password-file", str(password))  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, data_dir, "notify", "list", "--json")
    listed: list[dict[str, Any]] = json.loads(out)
    assert [(s["name"], s["waiting"]) for s in listed] == [("hook", 0), ("mail", 0)]
    assert listed[1]["to"] == ["a@example.org", "b@example.org"] and listed[1]["port"] == 587
    assert key not in out and "smtp-CANARY-pw" not in out
    code, out, _ = run(capsys, data_dir, "notify", "list")
    assert "hook  webhook  https://h.example/in  up to date" in out
    code, _, err = run(capsys, data_dir, "notify", "remove", "nope", "--yes")
    assert code == 1 and "no sink named nope" in err
    code, out, _ = run(capsys, data_dir, "notify", "deliver", "--json")
    assert code == 0 and json.loads(out) == {
        "delivered": 0,
        "retrying": 0,
        "failed": 0,
        "errors": [],
    }
    code, out, _ = run(capsys, data_dir, "notify", "remove", "hook", "--yes")
    assert code == 0 and out == "removed sink hook\n"
    code, _, err = run(capsys, data_dir, *email, "--to", "x@example.org\r\nBcc: y@evil.example")
    assert code == 2 and err.count("\n") == 1
