"""The pages as a person and a browser see them: content, roles, cookies, headers."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.web_fixtures import BASE_URL, WebVault, sign_in

pytestmark = pytest.mark.contract


def test_security_headers_on_pages_and_api(client: FlaskClient) -> None:
    for path in ("/signin", "/api/v1/status"):
        headers = client.get(path, base_url=BASE_URL).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"


def test_the_session_cookie_is_host_only_secure_httponly_strict(client: FlaskClient) -> None:
    response = client.post(
        "/signin",
        data={"name": "ada", "password": "ada's vault passphrase 7"},
        base_url=BASE_URL,
        headers={"Origin": BASE_URL},
    )
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-gwvault-session-443=")  # the port: BASE_URL's https
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie


def test_wrong_password_shows_one_message_and_sets_no_cookie(client: FlaskClient) -> None:
    response = client.post(
        "/signin",
        data={"name": "ada", "password": "nope"},
        base_url=BASE_URL,
        headers={"Origin": BASE_URL},
    )
    assert response.status_code == 403
    assert "wrong user name or password" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


def test_overview_shows_the_gateway_facts(client: FlaskClient, web_vault: WebVault) -> None:
    sign_in(client, "otto")
    html = client.get("/", base_url=BASE_URL).get_data(as_text=True)
    with web_vault.gateway() as gateway:
        status = gateway.status()
    for fact in (
        status["name"],
        status["cert_thumbprint"],
        status["cert_not_after"],
        "HTTPS certificate",
    ):
        assert fact in html
    assert "/users" not in html  # an auditor sees no user admin
    assert '<a href="/audit">Audit</a>' in html  # but does see the audit trail


def test_users_page_is_for_admins(client: FlaskClient) -> None:
    sign_in(client, "cleo")
    assert client.get("/users", base_url=BASE_URL).status_code == 403
    client.post("/signout", data={}, base_url=BASE_URL, headers={"Origin": BASE_URL})
    csrf = sign_in(client, "ada")
    added = client.post(
        "/users",
        data={
            "csrf_token": csrf,
            "name": "newbie",
            "role": "creator",
            "password": "newbie's first phrase 5",
            "password_again": "newbie's first phrase 5",
        },
        base_url=BASE_URL,
        headers={"Origin": BASE_URL},
    )
    assert added.status_code == 302
    assert "newbie" in client.get("/users", base_url=BASE_URL).get_data(as_text=True)


def test_the_credential_form_has_no_named_secret_field(client: FlaskClient) -> None:
    sign_in(client, "cleo")
    html = client.get("/credentials/new", base_url=BASE_URL).get_data(as_text=True)
    assert 'id="secret"' in html and 'name="secret"' not in html
    assert "<script>" not in html  # no inline script; the CSP would block it anyway


@pytest.mark.sqlite_only("breaks the vault.db file under the server")
def test_a_storage_failure_is_a_503_without_internals(
    client: FlaskClient, web_vault: WebVault
) -> None:
    sign_in(client, "ada")
    (web_vault.data_dir / "vault.db").chmod(0o000)  # root ignores modes: break it harder
    (web_vault.data_dir / "vault.db").rename(web_vault.data_dir / "moved.db")
    response = client.get("/api/v1/credentials", base_url=BASE_URL)
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "vault.db" not in body and str(web_vault.data_dir) not in body
    assert response.get_json()["error"]["code"] == "storage_unavailable"
