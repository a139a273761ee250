"""The sinks in the JSON API: admins list, test and remove them; nobody else; never a secret."""

from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskClient

from tests.tls_certificates import CertificateAuthority
from tests.vault.notify.conftest import WebhookReceiver
from tests.web.api_helpers import API, assert_api_error, bearer, new_token
from tests.web.test_openapi import assert_documented
from tests.web_fixtures import BASE_URL, WebVault
from vault.notify.sink_config import webhook_config
from vault.notify.sinks import SinkService

SINKS = f"{API}/notify/sinks"


def test_admins_list_test_and_remove_sinks_and_nobody_else_may(
    app: Flask, client: FlaskClient, web_vault: WebVault, webhook_receiver: WebhookReceiver,
    trusted_ca: CertificateAuthority,
) -> None:  # fmt: skip
    with web_vault.gateway() as gateway:
        added = SinkService(gateway).add(
            "hook", webhook_config(webhook_receiver.url, trusted_ca.pem), None
        )
    key = added.generated_secret
    assert key is not None
    admin, creator = bearer(new_token(web_vault, "admin")), bearer(new_token(web_vault, "creator"))

    listed = client.get(SINKS, base_url=BASE_URL, headers=admin)
    assert listed.status_code == 200
    assert_documented(app, listed)
    assert [(s["name"], s["url"], s["waiting"]) for s in listed.get_json()] == [
        ("hook", webhook_receiver.url, 0)
    ]
    assert key.reveal() not in listed.data

    tested = client.post(f"{SINKS}/hook/test", base_url=BASE_URL, headers=admin)
    assert tested.get_json() == {"delivered": True, "reason": "HTTP 200"}
    assert_documented(app, tested)
    assert json.loads(webhook_receiver.requests[0].body)["kind"] == "notify.test"

    for method, url in (
        ("GET", SINKS),
        ("POST", f"{SINKS}/hook/test"),
        ("DELETE", f"{SINKS}/hook"),
    ):
        assert_api_error(client.open(url, method=method, base_url=BASE_URL, headers=creator), 403)
    assert_api_error(client.delete(f"{SINKS}/nope", base_url=BASE_URL, headers=admin), 404)
    assert_api_error(client.delete(f"{SINKS}/..%2Fx", base_url=BASE_URL, headers=admin), 404)
    assert client.delete(f"{SINKS}/hook", base_url=BASE_URL, headers=admin).status_code == 204
    assert client.get(SINKS, base_url=BASE_URL, headers=admin).get_json() == []
