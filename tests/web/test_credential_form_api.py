"""What the credential form relies on from the API and the pages, with hostile input:
a save without a new seal is one clear refusal, an oversized body one clear 413,
a browser's save leaves a one-time message for the next page (an API token's
does not), and the edit page offers only what the caller may do.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tls_certificates import make_ca
from tests.web.api_helpers import (
    API,
    UNREACHABLE_PG,
    assert_api_error,
    bearer,
    certificate_of,
    new_token,
    put_credential,
    seal_for,
    sealed_body,
    session_headers,
    store_as_ada,
    unchanged,
)
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.credentials import CredentialService
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.data_source import DataSource
from web.flash import FLASH_COOKIE_PREFIX
from web.json_body import NO_SEAL


def flash_cookies(client: FlaskClient) -> list[str]:
    """The one-time message waiting for the next page (the test client serves port 443)."""
    cookie = client.get_cookie(FLASH_COOKIE_PREFIX + "443", domain="localhost")
    return [] if cookie is None else [cookie.decoded_value]


@pytest.mark.parametrize("sealed", ["", None])
def test_a_save_without_a_new_seal_is_one_clear_refusal(
    app: Flask, client: FlaskClient, web_vault: WebVault, sealed: str | None
) -> None:
    store_as_ada(app, web_vault, "sales-pg")
    csrf = sign_in(client, "ada")
    moved = {
        "type": "postgresql",
        "server": "db.other.example:5432",
        "encrypted_credential": sealed,
    }
    with unchanged(web_vault):
        response = put_credential(client, "sales-pg", moved, session_headers(csrf))
    assert assert_api_error(response, 400, "invalid_input") == NO_SEAL
    assert flash_cookies(client) == []


def test_the_stored_seal_does_not_move_to_a_new_server(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    body = store_as_ada(app, web_vault, "sales-pg")
    csrf = sign_in(client, "ada")
    moved = {**body, "server": "db.other.example:5432"}  # the old blob, a new server
    with unchanged(web_vault):
        response = put_credential(client, "sales-pg", moved, session_headers(csrf))
    message = assert_api_error(response, 400, "invalid_input")
    assert "does not open" in message and "server" in message


@pytest.mark.parametrize("size", [70_000, 10_000_000])
def test_an_oversized_body_is_a_clear_413_not_the_frameworks_words(
    client: FlaskClient, web_vault: WebVault, size: int
) -> None:
    csrf = sign_in(client, "cleo")
    body = {"type": "postgresql", "server": UNREACHABLE_PG, "encrypted_credential": "x" * size}
    with unchanged(web_vault):
        response = put_credential(client, "big", body, session_headers(csrf))
    message = assert_api_error(response, 413, "body_too_large")
    assert message == "the body is over 65536 bytes"
    # A stored-credential test with a body too large for it is refused alike.
    test = client.post(
        f"{API}/credentials/big/test",
        data=b"{" + b" " * size + b"}",
        content_type="application/json",
        base_url=BASE_URL,
        headers=session_headers(csrf),
    )
    assert assert_api_error(test, 413, "body_too_large") == message


def test_a_browser_save_leaves_the_saved_version_for_the_next_page(
    client: FlaskClient, web_vault: WebVault
) -> None:
    csrf = sign_in(client, "cleo")
    for version in (1, 2):
        body = sealed_body(web_vault, "sales-pg")
        response = put_credential(client, "sales-pg", body, session_headers(csrf))
        assert response.status_code in (200, 201)
        assert flash_cookies(client) == [f"credential-saved:sales-pg (version {version})"]
        listed = client.get("/credentials", base_url=BASE_URL).get_data(as_text=True)
        assert f"Saved credential sales-pg (version {version})." in listed
        assert flash_cookies(client) == []  # shown once
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(FLASH_COOKIE_PREFIX)
    assert all(part in cookie for part in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"))


def test_no_message_for_a_token_a_refused_save_or_a_missing_csrf_token(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    token = bearer(new_token(web_vault, "creator"))
    response = put_credential(client, "by-token", sealed_body(web_vault, "by-token"), token)
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers
    store_as_ada(app, web_vault, "ada-pg")
    csrf = sign_in(client, "cleo")
    with unchanged(web_vault):
        others = put_credential(
            client, "ada-pg", sealed_body(web_vault, "ada-pg"), session_headers(csrf)
        )
        no_csrf = put_credential(
            client, "new-pg", sealed_body(web_vault, "new-pg"), {"Origin": BASE_URL}
        )
        wrong_origin = put_credential(
            client,
            "new-pg",
            sealed_body(web_vault, "new-pg"),
            {"Origin": "https://evil.example", "X-CSRF-Token": csrf},
        )
    assert_api_error(others, 403, "forbidden")
    assert_api_error(no_csrf, 403)
    assert_api_error(wrong_origin, 403)
    assert flash_cookies(client) == []


def test_the_edit_page_offers_only_what_the_caller_may_do(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, "ada-pg")
    sign_in(client, "ada")
    own = client.get("/credentials/ada-pg", base_url=BASE_URL).get_data(as_text=True)
    assert 'id="credential-form"' in own and 'id="save"' in own and 'id="test"' in own
    assert "/credentials/ada-pg/delete" in own
    for viewer in ("cleo", "otto"):
        other = app.test_client()
        sign_in(other, viewer)
        page = other.get("/credentials/ada-pg", base_url=BASE_URL)
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert 'id="read-only"' in html
        for offered in ("<form id", "<input id", '<button type="submit" id', "/delete"):
            assert offered not in html, (viewer, offered)
        assert "alice" in html  # the details are shown, never the secret
        assert "pa55word" not in html


def test_the_edit_page_shows_the_stored_ca_so_a_save_keeps_it(
    client: FlaskClient, web_vault: WebVault
) -> None:
    tls_ca_pem = canonical_ca_pem(make_ca("form test CA").pem)
    target = DataSource("postgresql", UNREACHABLE_PG, tls="verify-ca", ca_pem=tls_ca_pem)
    token = seal_for(certificate_of(web_vault), "ca-pg", target)
    body = {"type": "postgresql", "server": UNREACHABLE_PG, "tls": "verify-ca",
            "ca_pem": tls_ca_pem, "encrypted_credential": token}  # fmt: skip
    csrf = sign_in(client, "cleo")
    assert put_credential(client, "ca-pg", body, session_headers(csrf)).status_code == 201
    html = client.get("/credentials/ca-pg", base_url=BASE_URL).get_data(as_text=True)
    first_line = tls_ca_pem.splitlines()[1]
    assert first_line in html
    with web_vault.gateway() as gateway:
        assert CredentialService(gateway).get("ca-pg").binding.ca_pem == tls_ca_pem
