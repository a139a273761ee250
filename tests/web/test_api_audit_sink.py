"""A block audit sink that is down fails an API change with 503
``audit_sink_unavailable`` (the API's error shape, no traceback) and changes
nothing; the overview page warns while a buffer sink fails."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.audit_collector import AuditCollector
from tests.web.api_helpers import (
    assert_api_error,
    bearer,
    new_token,
    put_credential,
    sealed_body,
    unchanged,
)
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.audit.sinks.delivery import deliver_buffered
from vault.audit.sinks.registry import AuditSinkService
from vault.notify.sink_config import webhook_config


def _add(web_vault: WebVault, collector: AuditCollector, policy: str) -> None:
    with web_vault.gateway() as gateway:
        AuditSinkService(gateway).add(
            "siem", webhook_config(collector.url, collector.ca.pem), policy
        )


def test_a_put_with_a_block_sink_down_is_503_and_changes_nothing(
    app: Flask, client: FlaskClient, web_vault: WebVault, audit_collector: AuditCollector
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    _add(web_vault, audit_collector, "block")
    audit_collector.stop()
    # Nothing changes but the note that the sink fails (for status and doctor).
    with unchanged(web_vault, results=frozenset({"audit_sink_places"})):
        response = put_credential(client, "sales-db", sealed_body(web_vault, "sales-db"), admin)
        message = assert_api_error(response, 503, "audit_sink_unavailable")
    # The collector's address is the gateway's business (its log), not the caller's.
    assert "audit sink" in message and "nothing was changed" in message
    assert str(audit_collector.port) not in message
    assert "Traceback" not in response.get_data(as_text=True)
    audit_collector.start()
    response = put_credential(client, "sales-db", sealed_body(web_vault, "sales-db"), admin)
    assert response.status_code in (200, 201), response.get_data(as_text=True)


def test_the_overview_warns_while_a_buffer_sink_fails(
    client: FlaskClient, web_vault: WebVault, audit_collector: AuditCollector
) -> None:
    _add(web_vault, audit_collector, "buffer")
    audit_collector.stop()
    with web_vault.gateway() as gateway:
        assert "siem" in deliver_buffered(gateway).failing
    sign_in(client, "ada")
    page = client.get("/", base_url=BASE_URL).get_data(as_text=True)
    assert 'role="alert">Warning: the audit sink siem (buffer) has failed since' in page
    assert "entries behind" in page
