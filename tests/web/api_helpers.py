"""What the web API tests share: callers, sealed bodies, the error shape and a vault snapshot."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from agent_keys.gateway_identity import (
    GatewayCertificate,
    generate_gateway_identity,
    new_gateway_id,
)
from agent_keys.randomness import system_random
from agent_keys.secret import Secret
from tests.sealing import seal
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.access.grants import AccessGrants
from vault.context import Clock, RequestContext, utc_now
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.store.catalog import table_names

API = "/api/v1"
ORIGIN = {"Origin": BASE_URL}
# A PostgreSQL server nobody listens on: port 1 on loopback refuses at once.
UNREACHABLE_PG = "127.0.0.1:1"
UNREACHABLE_TARGET = DataSource("postgresql", UNREACHABLE_PG)
# Tables whose rows only a successful change may touch.  The audit trail grows
# with refusals on purpose, and sessions are the callers' own state.
# Refusals are recorded on purpose: the trail (its entries, checkpoints, signers
# and the MACed note of its last entry) moves with them.
_VOLATILE_TABLES = frozenset(
    {"audit_events", "audit_checkpoints", "audit_signers", "web_sessions", "sqlite_sequence"}
)
_VOLATILE_SETTINGS = frozenset({"audit_head"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_headers(csrf_token: str) -> dict[str, str]:
    """What the page's script sends with a state change: its origin and CSRF token."""
    return {**ORIGIN, "X-CSRF-Token": csrf_token}


def new_token(web_vault: WebVault, role: str, name: str | None = None) -> str:
    with web_vault.gateway() as gateway:
        return AccessGrants(gateway).create_token(name or f"{role}-token", role)


def new_entry_link(
    web_vault: WebVault,
    datasource: str,
    *,
    clock: Clock | None = None,
    target: DataSource = UNREACHABLE_TARGET,
) -> str:
    """An entry-link secret for ``datasource`` and ``target`` (by default what
    ``sealed_body`` names), made by an admin whose clock may be moved."""
    context = RequestContext(actor="user:ada", channel="cli", clock=clock or utc_now)
    with Gateway.open(web_vault.data_dir, context, unlocked=web_vault.handle.master_key) as gw:
        secret, _link = AccessGrants(gw).create_entry_link(
            datasource, target, datetime.timedelta(minutes=15)
        )
    return secret


def certificate_of(web_vault: WebVault) -> GatewayCertificate:
    with web_vault.gateway() as gateway:
        return gateway.certificate()


def foreign_certificate(web_vault: WebVault, *, same_gateway_id: bool) -> GatewayCertificate:
    """A certificate this vault holds no key for: another gateway's, or a forged one of ours."""
    mine = certificate_of(web_vault).gateway_id
    gateway_id = mine if same_gateway_id else new_gateway_id(system_random)
    now = datetime.datetime.now(datetime.UTC)
    return generate_gateway_identity("other", gateway_id, "ec-p256", now, system_random)[1]


def seal_for(
    certificate: GatewayCertificate, datasource: str, target: DataSource = UNREACHABLE_TARGET
) -> str:
    """Alice's PostgreSQL login sealed now to ``certificate`` for ``datasource`` and ``target``."""
    payload = CredentialPayload("basic", "alice", Secret.from_text("alice's pa55word"))
    return seal(certificate, datasource, target, payload)


def sealed_body(web_vault: WebVault, datasource: str) -> dict[str, str]:
    """A PUT body for a PostgreSQL credential of ``datasource`` (unreachable), sealed for it."""
    token = seal_for(certificate_of(web_vault), datasource)
    return {"type": "postgresql", "server": UNREACHABLE_PG, "encrypted_credential": token}


def put_credential(
    client: FlaskClient, name: str, body: object, headers: dict[str, str]
) -> TestResponse:
    return client.put(f"{API}/credentials/{name}", json=body, base_url=BASE_URL, headers=headers)


def store_as_ada(app: Flask, web_vault: WebVault, name: str) -> dict[str, str]:
    """Ada (an admin user, so owner ``user:ada``) stores ``name``; returns the body she sent."""
    ada = app.test_client()
    body = sealed_body(web_vault, name)
    response = put_credential(ada, name, body, session_headers(sign_in(ada, "ada")))
    assert response.status_code == 201, response.get_data(as_text=True)
    return body


def assert_api_error(response: TestResponse, status: int, code: str | None = None) -> str:
    """The response is ``status`` with exactly the API's error shape; returns its message."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    if code is not None:
        assert error["code"] == code, body
    message: str = error["message"]
    return message


def vault_rows(
    web_vault: WebVault, results: frozenset[str] = frozenset()
) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table a refused request must leave alone (but ``results``)."""
    with web_vault.gateway() as gateway:
        tables = sorted(table_names(gateway.store.engine) - _VOLATILE_TABLES - results)
        # Table names come from the database's own catalog, not from a request.
        rows = {
            table: gateway.store.rows(f"SELECT * FROM {table} ORDER BY 1", [])  # noqa: S608
            for table in tables
        }
    rows["settings"] = [row for row in rows["settings"] if row["key"] not in _VOLATILE_SETTINGS]
    return rows


@contextlib.contextmanager
def unchanged(web_vault: WebVault, results: frozenset[str] = frozenset()) -> Iterator[None]:
    """Fails unless every durable row is the same after the block as before it,
    but those of ``results`` (what the request reports into, such as a test's status)."""
    before = vault_rows(web_vault, results)
    yield
    assert vault_rows(web_vault, results) == before, "a refused request changed the vault"
