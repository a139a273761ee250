"""Who may call which route: every route refuses an anonymous caller, and roles hold.

The walk goes over the app's url_map, so a new route is covered (and must
refuse) the moment it is registered.  Only the sign-in form, static files (and
/favicon.ico, a redirect to one) and the probes (/healthz, /readyz: ok or not,
nothing more) are open; the entry routes take a secret from the URL and refuse a made-up one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from agent_keys.master_key import MasterKey
from agent_keys.secret import Secret
from tests.web.api_helpers import (
    API,
    ORIGIN,
    UNREACHABLE_PG,
    assert_api_error,
    bearer,
    new_token,
    put_credential,
    sealed_body,
    session_headers,
    store_as_ada,
    unchanged,
)
from tests.web_fixtures import BASE_URL, LiveServer, WebVault, sign_in
from vault.metrics.settings import new_scrape_token
from web.access import SAFE_METHODS, SESSION_COOKIE_PREFIX, VaultHandle
from web.api import OPENAPI_PATH
from web.app import create_app

# Routes only: no request ever runs against this app, so its key opens nothing.
_ROUTES_ONLY = create_app(VaultHandle(Path("/nonexistent"), MasterKey(1, Secret(bytes(32)))))
OPEN_ENDPOINTS = {
    "pages.sign_in_form",
    "pages.sign_in",
    "static",
    "pages.favicon",
    "health.healthz",
    "health.readyz",
}
STORED = "sales-db"  # stored by ada before each walk, so routes that look it up find it
STORED_URL = f"{API}/credentials/{STORED}"
SEAL_ME = {"datasource": "hr-db", "type": "postgresql", "server": UNREACHABLE_PG,
           "username": "bob", "secret": "bob's pa55word"}  # fmt: skip
PLAUSIBLE = {
    "name": STORED,
    # The shape of a real entry-link secret (43 base64url characters), never issued.
    "secret": "q5Yl0Zr3bKc2VhX9nU8tWm1sPa4oEi7dRf6gJy0TzLw",
    "filename": "seal.js",
    "link_id": "0b7c6a1e-2f4d-4c59-9a51-8d3e0f6b7a21",  # the shape of an entry link's id
}
# Callers that present nothing valid: none at all, a made-up token, a made-up session.
ANONYMOUS = {
    "nothing": {},
    "made-up-token": bearer("gwv_" + "A" * 43),
    "made-up-session": {"Cookie": f"{SESSION_COOKIE_PREFIX}443={'B' * 43}"},
}


def _url(rule: Rule) -> str:
    built = rule.build({arg: PLAUSIBLE[arg] for arg in rule.arguments})
    assert built is not None, rule.rule
    return built[1]


def _calls(*, open_routes: bool) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) for each route; OPTIONS is Flask's automatic answer."""
    return [
        (method, _url(rule), rule.endpoint)
        for rule in _ROUTES_ONLY.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - {"OPTIONS"})
        if (rule.endpoint in OPEN_ENDPOINTS) == open_routes
    ]


GUARDED = _calls(open_routes=False)


AUDIT_ENDPOINTS = {"api.audit_events", "api.audit_verify", "pages.audit"}
AUDIT_CALLS = [(url, endpoint) for method, url, endpoint in GUARDED
               if endpoint in AUDIT_ENDPOINTS and method == "GET"]  # fmt: skip
USERS = {"admin": "ada", "creator": "cleo", "auditor": "otto"}


@pytest.fixture
def stored(app: Flask, web_vault: WebVault) -> dict[str, str]:
    return store_as_ada(app, web_vault, STORED)


@pytest.fixture
def admin(web_vault: WebVault) -> dict[str, str]:
    return bearer(new_token(web_vault, "admin"))


def _call(client: FlaskClient, method: str, url: str, headers: dict[str, str]) -> TestResponse:
    if method not in SAFE_METHODS:
        headers = {**ORIGIN, **headers}  # past the origin check, so the refusal is the caller's
    return client.open(url, method=method, base_url=BASE_URL, headers=headers)


def test_only_sign_in_static_and_the_probes_are_open() -> None:
    opened = {(method, endpoint) for method, _url, endpoint in _calls(open_routes=True)}
    assert opened == {
        ("GET", "pages.sign_in_form"),
        ("HEAD", "pages.sign_in_form"),
        ("POST", "pages.sign_in"),
        ("GET", "static"),
        ("HEAD", "static"),
        ("GET", "pages.favicon"),
        ("HEAD", "pages.favicon"),
        ("GET", "health.healthz"),
        ("HEAD", "health.healthz"),
        ("GET", "health.readyz"),
        ("HEAD", "health.readyz"),
    }


def test_the_walk_reaches_every_view() -> None:
    walked = {endpoint for _method, _url, endpoint in GUARDED} | OPEN_ENDPOINTS
    assert walked == set(_ROUTES_ONLY.view_functions)


@pytest.mark.parametrize("who", sorted(ANONYMOUS))
@pytest.mark.parametrize(("method", "url", "endpoint"), GUARDED, ids=str)
@pytest.mark.usefixtures("stored")
def test_anonymous_caller_is_refused(
    client: FlaskClient, method: str, url: str, endpoint: str, who: str
) -> None:
    response = _call(client, method, url, ANONYMOUS[who])
    _assert_refused_as_anonymous(response, method, url, endpoint)


def test_the_scrape_token_opens_nothing_but_the_metrics(
    client: FlaskClient, web_vault: WebVault
) -> None:
    # A Prometheus server's token, read by whoever reads its configuration (T-MET-2).
    # One vault for the whole walk: a copy per route cost half a minute.
    with web_vault.gateway() as gateway:
        headers = bearer(new_scrape_token(gateway))
    for method, url, endpoint in GUARDED:
        response = _call(client, method, url, headers)
        if endpoint == "metrics.scrape":
            assert response.status_code == 200
            continue
        _assert_refused_as_anonymous(response, method, url, endpoint)


def _assert_refused_as_anonymous(
    response: TestResponse, method: str, url: str, endpoint: str
) -> None:
    is_api = endpoint.startswith("api.")
    if endpoint == "metrics.scrape":  # a scraper follows no sign-in redirect (T-MET-2)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="gwvault-metrics"'
    elif "/entry/" in url:  # the made-up secret is what gets refused, whoever calls
        # The entry page says the link is unknown; the API refuses it.
        assert response.status_code == (403 if is_api else 404), response.get_data(as_text=True)
        if is_api and method != "HEAD":
            assert_api_error(response, 403, "forbidden")
    elif is_api:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="gwvault"'
        if method != "HEAD":
            assert_api_error(response, 401, "unauthenticated")
    else:
        assert response.status_code == 302, response.get_data(as_text=True)
        assert response.headers["Location"] == "/signin"
    assert b"Traceback" not in response.data


def test_made_up_entry_secret_in_the_page_is_refused(client: FlaskClient) -> None:
    response = client.get(f"/entry/{PLAUSIBLE['secret']}", base_url=BASE_URL)
    assert response.status_code == 404
    assert "This entry link is not recognised" in response.get_data(as_text=True)


def test_anonymous_delete_page_does_not_reveal_which_names_exist(client: FlaskClient) -> None:
    response = _call(client, "POST", "/credentials/no-such-source/delete", {})
    assert response.status_code == 302


def test_openapi_document_needs_a_caller(client: FlaskClient, web_vault: WebVault) -> None:
    anonymous = client.get(f"{API}/openapi.json", base_url=BASE_URL)
    assert_api_error(anonymous, 401, "unauthenticated")
    token = new_token(web_vault, "auditor")
    response = client.get(f"{API}/openapi.json", base_url=BASE_URL, headers=bearer(token))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.data == OPENAPI_PATH.read_bytes()


def test_openapi_document_over_real_https_with_curl(live_server: LiveServer) -> None:
    token = new_token(live_server.web_vault, "creator")
    url = f"{live_server.url}{API}/openapi.json"
    # The token goes to curl on stdin ("-H @-"), not in argv where `ps` would show it.
    fetched = subprocess.run(
        ["curl", "-sk", "-H", "@-", "-w", "\n%{http_code}", url],
        input=f"Authorization: Bearer {token}\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, status = fetched.stdout.rsplit("\n", 1)
    assert status == "200"
    assert body.encode() == OPENAPI_PATH.read_bytes()
    anonymous = subprocess.run(
        ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert anonymous.stdout == "401"


@pytest.mark.parametrize("how", ["token", "session"])
@pytest.mark.parametrize("role", ["auditor", "creator"])  # the creator is not the owner
def test_role_without_the_right_cannot_change_a_credential(
    client: FlaskClient, web_vault: WebVault, stored: dict[str, str], how: str, role: str
) -> None:
    user = {"auditor": "otto", "creator": "cleo"}[role]
    if how == "token":
        headers = bearer(new_token(web_vault, role))
    else:
        headers = session_headers(sign_in(client, user))
    with unchanged(web_vault):
        assert_api_error(put_credential(client, STORED, stored, headers), 403, "forbidden")
        assert_api_error(
            client.delete(STORED_URL, base_url=BASE_URL, headers=headers), 403, "forbidden"
        )
        tested = client.post(f"{STORED_URL}/test", base_url=BASE_URL, headers=headers)
        assert_api_error(tested, 403, "forbidden")


def test_creator_may_change_what_it_created(client: FlaskClient, web_vault: WebVault) -> None:
    headers = session_headers(sign_in(client, "cleo"))
    body = sealed_body(web_vault, "cleo-db")
    url = f"{API}/credentials/cleo-db"
    answers = [
        put_credential(client, "cleo-db", body, headers),
        put_credential(client, "cleo-db", body, headers),
        client.post(f"{url}/test", base_url=BASE_URL, headers=headers),
        client.delete(url, base_url=BASE_URL, headers=headers),
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 204]
    assert answers[0].get_json()["owner"] == "user:cleo"


@pytest.mark.parametrize("who", ["auditor", "admin-session"])
def test_encrypt_value_refuses_sessions_and_auditors(
    client: FlaskClient, web_vault: WebVault, who: str
) -> None:
    if who == "admin-session":
        headers = session_headers(sign_in(client, "ada"))
    else:
        headers = bearer(new_token(web_vault, who, "sealer"))
    with unchanged(web_vault):
        response = client.post(
            f"{API}/encrypt-value", json=SEAL_ME, base_url=BASE_URL, headers=headers
        )
    assert_api_error(response, 403, "forbidden")


@pytest.mark.parametrize("role", ["admin", "creator"])
def test_encrypt_value_seals_for_api_tokens(
    client: FlaskClient, web_vault: WebVault, admin: dict[str, str], role: str
) -> None:
    headers = bearer(new_token(web_vault, role, "sealer"))
    response = client.post(f"{API}/encrypt-value", json=SEAL_ME, base_url=BASE_URL, headers=headers)
    assert response.status_code == 200 and set(response.get_json()) == {"encrypted_credential"}
    body = {"type": "postgresql", "server": UNREACHABLE_PG, **response.get_json()}
    elsewhere = {**body, "server": "attacker.example:5432"}
    assert put_credential(client, "hr-db", elsewhere, admin).status_code == 400
    assert put_credential(client, "hr-db", body, admin).status_code == 201


@pytest.mark.parametrize("datasource", [None, "", "../x"])
def test_encrypt_value_refuses_a_name_no_credential_can_have(
    client: FlaskClient, web_vault: WebVault, datasource: str | None
) -> None:
    headers = bearer(new_token(web_vault, "creator", "sealer"))
    request = {"datasource": datasource, "type": "http", "server": "https://api.example",
               "auth": "key", "secret": "an API key"}  # fmt: skip
    response = client.post(f"{API}/encrypt-value", json=request, base_url=BASE_URL, headers=headers)
    assert_api_error(response, 400, "invalid_input")


def test_the_walk_covers_the_audit_trail() -> None:
    assert {endpoint for _url, endpoint in AUDIT_CALLS} == AUDIT_ENDPOINTS


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("auditor", 200), ("creator", 403)])
@pytest.mark.parametrize("how", ["token", "session"])
def test_the_audit_trail_is_for_admins_and_auditors(
    app: Flask, web_vault: WebVault, role: str, status: int, how: str
) -> None:
    client = app.test_client()
    headers: dict[str, str] = {}
    if how == "token":
        headers = bearer(new_token(web_vault, role))
    else:
        sign_in(client, USERS[role])
    for url, endpoint in AUDIT_CALLS:
        response = _call(client, "GET", url, headers)
        assert response.status_code == status, (url, response.get_data(as_text=True))
        if status == 403 and endpoint.startswith("api."):
            assert_api_error(response, 403, "forbidden")
