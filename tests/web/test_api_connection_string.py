"""PUT /credentials/<name> with a ``connection_string`` instead of type, server and blob."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from tests.web.api_helpers import (
    API,
    UNREACHABLE_PG,
    assert_api_error,
    bearer,
    certificate_of,
    new_token,
    put_credential,
    seal_for,
    unchanged,
)
from tests.web_fixtures import BASE_URL, WebVault
from vault.format.data_source import DataSource

SQLSERVER = DataSource("sqlserver", "sql.example.com:1433", "sales")


@pytest.fixture
def admin(web_vault: WebVault) -> dict[str, str]:
    return bearer(new_token(web_vault, "admin"))


def test_a_sealed_ado_net_string_is_stored_as_sql_server(
    client: FlaskClient, web_vault: WebVault, admin: dict[str, str]
) -> None:
    token = seal_for(certificate_of(web_vault), "sales", SQLSERVER)
    string = f"Data Source=sql.example.com,1433;Initial Catalog=sales;EncryptedCredential={token}"
    body = {"connection_string": string, "contact": "dba@example.com"}
    response = put_credential(client, "sales", body, admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    shown = response.get_json()
    assert shown["contact"] == "dba@example.com"
    assert (shown["type"], shown["server"], shown["database"], shown["username"]) == (
        "sqlserver", "sql.example.com:1433", "sales", "alice",
    )  # fmt: skip


def test_a_sealed_url_is_tested_unsaved(
    client: FlaskClient, web_vault: WebVault, admin: dict[str, str]
) -> None:
    token = seal_for(certificate_of(web_vault), "pg")
    body = {
        "connection_string": f"postgresql://alice@{UNREACHABLE_PG}?encrypted_credential={token}"
    }
    response = client.post(
        f"{API}/credentials/pg/test", json=body, base_url=BASE_URL, headers=admin
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["reason"] == "unreachable"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"connection_string": "Data Source=db;Colour=blue"}, "'colour'"),
        (
            {"connection_string": "Data Source=db;EncryptedCredential=x", "type": "mysql"},
            "drop type",
        ),
        (
            {
                "connection_string": "postgresql://a@db/x?sslmode=verify-full&encrypted_credential=x",
                "tls": "require",
            },
            "weaker",
        ),
        ({"connection_string": "postgresql://a@db/x"}, "no EncryptedCredential"),
        ({"connection_string": ""}, "empty"),
    ],
)
def test_bad_strings_are_one_400_that_changes_nothing(
    client: FlaskClient, web_vault: WebVault, admin: dict[str, str], body: dict[str, str], said: str
) -> None:
    with unchanged(web_vault):
        response = put_credential(client, "sales", body, admin)
        assert said in assert_api_error(response, 400)


@pytest.mark.parametrize(
    "string",
    ["Data Source=db;User ID=u;Password={pw};EncryptedCredential=x", "mysql://u:{pw}@db/x"],
)
def test_a_password_in_clear_is_refused_and_never_echoed_or_logged(  # noqa: PLR0917 - fixtures
    client: FlaskClient,
    web_vault: WebVault,
    admin: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    canary: str,
    string: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    with unchanged(web_vault):
        body = {"connection_string": string.format(pw=canary)}
        response = put_credential(client, "sales", body, admin)
        message = assert_api_error(response, 400)
    assert "password in clear" in message and "encrypt-value" in message
    assert canary not in response.get_data(as_text=True)
    assert canary not in caplog.text
