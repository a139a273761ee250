"""The owner's dates through the API: PUT with the sealed credential, PATCH
.../life alone, GET /due; hostile bodies and queries are one clear 4xx that
changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.web.api_helpers import (
    API,
    assert_api_error,
    bearer,
    new_token,
    put_credential,
    sealed_body,
    session_headers,
    store_as_ada,
    unchanged,
)
from tests.web.test_openapi import assert_documented
from tests.web_fixtures import BASE_URL, WebVault, sign_in


def patch_life(client: FlaskClient, name: str, body: Any, headers: dict[str, str]) -> Any:
    return client.patch(
        f"{API}/credentials/{name}/life", json=body, base_url=BASE_URL, headers=headers
    )


def due(client: FlaskClient, query: str, headers: dict[str, str]) -> Any:
    return client.get(f"{API}/due{query}", base_url=BASE_URL, headers=headers)


def test_put_sets_the_dates_patch_changes_them_and_due_lists_them(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    body = {
        **sealed_body(web_vault, "sales"),
        "expires_at": "2020-06-30",
        "contact": "dba@example.com",
    }
    created = put_credential(client, "sales", body, admin)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["expires_at"] == "2020-06-30T00:00:00+00:00"
    # A put without them keeps them.
    updated = put_credential(client, "sales", sealed_body(web_vault, "sales"), admin).get_json()
    assert (updated["version"], updated["contact"]) == (2, "dba@example.com")

    listed = due(client, "", admin)
    assert listed.status_code == 200
    assert [(d["name"], d["what"], d["overdue"]) for d in listed.get_json()] == [
        ("sales", "expires", True)
    ]
    assert_documented(app, listed)

    changed = patch_life(client, "sales", {"expires_at": None, "rotate_every": "12w"}, admin)
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert (changed.get_json()["expires_at"], changed.get_json()["rotate_every"]) == (
        None,
        84 * 86400,
    )
    assert due(client, "?within=0d", admin).get_json() == []
    [rotation] = due(client, "?within=12w", admin).get_json()
    assert (rotation["what"], rotation["contact"]) == ("rotation", "dba@example.com")


def test_who_may_change_the_dates_and_read_what_is_due(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, "sales")
    cleo = session_headers(sign_in(client, "cleo"))
    with unchanged(web_vault):
        # A creator changes only its own credentials (decided again in the write).
        assert_api_error(patch_life(client, "sales", {"contact": "x@example.com"}, cleo), 403)
    assert due(client, "", cleo).status_code == 200
    auditor = bearer(new_token(web_vault, "auditor"))
    assert due(client, "", auditor).status_code == 200
    assert_api_error(patch_life(client, "sales", {"contact": "none"}, auditor), 403)
    assert_api_error(due(app.test_client(), "", {}), 401)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "send expires_at"),
        ({"expires_at": "2027-03-31T10:00:00"}, "no offset"),
        ({"expires_at": 1806451200}, "must be a string"),
        ({"rotate_every": 7776000}, "must be a string"),
        ({"rotate_every": "3m"}, "months"),
        ({"contact": "dba@example.com\r\nBcc: eve@example.com"}, "e-mail address"),
        ({"contact": "x" * 100_000}, None),
        ({"owner": "user:cleo"}, "unknown members"),
        ({"expires_at": "2027-03-31", "state": "active"}, "unknown members"),
        ([], "JSON object"),
    ],
)
def test_a_hostile_life_change_is_one_clear_refusal(
    app: Flask, client: FlaskClient, web_vault: WebVault, body: Any, says: str | None
) -> None:
    store_as_ada(app, web_vault, "sales")
    admin = bearer(new_token(web_vault, "admin"))
    with unchanged(web_vault):
        response = patch_life(client, "sales", body, admin)
        status = 413 if says is None else 400
        message = assert_api_error(response, status)
        assert says is None or says in message


def test_a_put_with_a_bad_date_stores_nothing(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    body = {**sealed_body(web_vault, "sales"), "rotate_every": "0d"}
    with unchanged(web_vault):
        assert "1 day" in assert_api_error(put_credential(client, "sales", body, admin), 400)


@pytest.mark.parametrize(
    "query",
    ["?within=", "?within=1y", "?within=30d&within=7d", "?within=3651d", "?limit=5",
     "?within=%EF%BC%93d", "?within=30d%00"],
)  # fmt: skip
def test_a_hostile_due_query_is_one_clear_refusal(
    client: FlaskClient, web_vault: WebVault, query: str
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    assert_api_error(due(client, query, admin), 400, "invalid_input")
