"""The users, tokens and own-password pages through the Flask client: who may
do what, the last admin kept, hostile input refused with the form kept, and a
new token shown once and nowhere else."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from agent_keys.secret import Secret
from tests.web.api_helpers import API, ORIGIN, bearer, new_token, unchanged
from tests.web_fixtures import BASE_URL, PASSWORDS, WebVault, sign_in
from vault.access.accounts import Accounts

NEW_PASSWORD = "a fresh phrase of words 11"


def _post(
    client: FlaskClient, url: str, data: dict[str, str], headers: dict[str, str] | None = None
) -> TestResponse:
    return client.post(
        url, data=data, base_url=BASE_URL, headers=ORIGIN if headers is None else headers
    )


def _get(client: FlaskClient, url: str) -> TestResponse:
    return client.get(url, base_url=BASE_URL)


def _text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def _add_admin(web_vault: WebVault, name: str = "bea") -> None:
    with web_vault.gateway() as gateway:
        Accounts(gateway).add_user(name, "admin", Secret.from_text(PASSWORDS["ada"]))


def _roles(web_vault: WebVault) -> dict[str, str]:
    with web_vault.gateway() as gateway:
        return {row["name"]: row["role"] for row in Accounts(gateway).users()}


def test_the_list_marks_you_and_remove_is_a_link_to_a_question(client: FlaskClient) -> None:
    sign_in(client, "ada")
    html = _text(_get(client, "/users"))
    assert html.count("(you)") == 1 and "ada <strong>(you)</strong>" in html
    assert 'class="button small destructive-outline" href="/users/cleo/remove"' in html
    assert 'action="/users/cleo/remove"' not in html  # nothing removes from the list itself
    question = _text(_get(client, "/users/cleo/remove"))
    assert "Remove the user cleo?" in question and 'action="/users/cleo/remove"' in question
    assert _get(client, "/users/nobody/remove").status_code == 404


# (name, password, password again, status, what the page says)
REFUSED_USERS = {
    "common": ("newbie", "password1234", "password1234", 400, "common passwords"),
    "short": ("newbie", "short", "short", 400, "at least 12 characters"),
    "mismatch": ("newbie", NEW_PASSWORD, NEW_PASSWORD + "x", 400, "the two passwords differ"),
    "duplicate": ("cleo", NEW_PASSWORD, NEW_PASSWORD, 409, "already exists"),
    "overlong": ("n" * 65, NEW_PASSWORD, NEW_PASSWORD, 400, "user name"),
    "zero-width": ("ne\u200bwbie", NEW_PASSWORD, NEW_PASSWORD, 400, "user name"),
    "not-nfc": ("e\u0301ve", NEW_PASSWORD, NEW_PASSWORD, 400, "user name"),
    "dotdot": ("..", NEW_PASSWORD, NEW_PASSWORD, 400, "user name"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_USERS))
def test_a_refused_user_keeps_the_form_but_never_the_password(
    client: FlaskClient, web_vault: WebVault, case: str
) -> None:
    name, password, again, status, message = REFUSED_USERS[case]
    csrf = sign_in(client, "ada")
    data = {"csrf_token": csrf, "name": name, "role": "auditor", "password": password,
            "password_again": again}  # fmt: skip
    with unchanged(web_vault):
        response = _post(client, "/users", data)
    html = _text(response)
    assert response.status_code == status and message in html
    assert 'role="alert" id="add-user-error"' in html
    assert f'value="{name}"' in html and "<option selected>auditor</option>" in html
    assert password not in html and "Traceback" not in html


def test_an_added_user_is_flashed_once(client: FlaskClient, web_vault: WebVault) -> None:
    csrf = sign_in(client, "ada")
    data = {"csrf_token": csrf, "name": "\u00e9ve/ops", "role": "auditor",
            "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}  # fmt: skip
    added = _post(client, "/users", data)
    assert added.status_code == 302 and added.headers["Location"] == "/users"
    page = _text(_get(client, "/users"))
    assert "Added user \u00e9ve/ops." in page
    assert 'href="/users/%C3%A9ve/ops/remove"' in page  # a name with / has its own pages
    assert "Added user" not in _text(_get(client, "/users"))
    assert _get(client, "/users/%C3%A9ve/ops/edit").status_code == 200
    assert _roles(web_vault)["\u00e9ve/ops"] == "auditor"


def test_the_last_admin_can_be_neither_removed_nor_demoted_on_the_page(
    client: FlaskClient, web_vault: WebVault
) -> None:
    csrf = sign_in(client, "ada")
    why = "ada is the last admin; add another admin first"
    asked = _get(client, "/users/ada/remove")  # says why instead of asking
    assert asked.status_code == 409 and why in _text(asked)
    assert 'action="/users/ada/remove"' not in _text(asked)
    with unchanged(web_vault):
        removed = _post(client, "/users/ada/remove", {"csrf_token": csrf})
        demoted = _post(
            client, "/users/ada/role", {"csrf_token": csrf, "role": "creator", "confirmed": "yes"}
        )
    assert removed.status_code == 409 and why in _text(removed)
    assert demoted.status_code == 409 and why in _text(demoted)
    assert _get(client, "/users").status_code == 200  # still signed in, still admin


def test_removing_yourself_signs_you_out(client: FlaskClient, web_vault: WebVault) -> None:
    _add_admin(web_vault)
    csrf = sign_in(client, "ada")
    question = _text(_get(client, "/users/ada/remove"))
    assert "Remove your own account (ada)?" in question and "signs you out" in question
    removed = _post(client, "/users/ada/remove", {"csrf_token": csrf})
    assert removed.status_code == 302 and removed.headers["Location"] == "/signin"
    cookies = removed.headers.getlist("Set-Cookie")
    assert any(c.startswith("__Host-gwvault-session-") and "Max-Age=0" in c for c in cookies)
    assert "Your account was removed and you are signed out." in _text(_get(client, "/signin"))
    assert _get(client, "/").headers["Location"] == "/signin"
    assert set(_roles(web_vault)) == {"bea", "cleo", "otto"}


def test_demoting_yourself_asks_first_then_leaves_the_users_page(
    client: FlaskClient, web_vault: WebVault
) -> None:
    _add_admin(web_vault)
    csrf = sign_in(client, "ada")
    with unchanged(web_vault):
        asked = _post(client, "/users/ada/role", {"csrf_token": csrf, "role": "auditor"})
    assert asked.status_code == 200 and "Make yourself (ada) auditor?" in _text(asked)
    assert 'name="confirmed" value="yes"' in _text(asked)
    bogus = _post(client, "/users/ada/role", {"csrf_token": csrf, "role": "root<b>"})
    assert bogus.status_code == 400 and "role must be one of" in _text(bogus)
    assert "root<b>" not in _text(bogus)
    done = _post(client, "/users/ada/role", {"csrf_token": csrf, "role": "auditor",
                                              "confirmed": "yes"})  # fmt: skip
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert "Changed the role of ada to auditor." in _text(_get(client, "/"))
    assert _get(client, "/users").status_code == 403
    assert _roles(web_vault)["ada"] == "auditor"


def test_an_admin_sets_a_password_and_ends_that_users_sessions(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    cleo = app.test_client()
    sign_in(cleo, "cleo")
    csrf = sign_in(client, "ada")
    url = "/users/cleo/password"
    weak = _post(client, url, {"csrf_token": csrf, "password": "password1234",
                               "password_again": "password1234"})  # fmt: skip
    assert weak.status_code == 400 and 'id="password-error"' in _text(weak)
    assert _get(cleo, "/").status_code == 200
    done = _post(client, url, {"csrf_token": csrf, "password": NEW_PASSWORD,
                               "password_again": NEW_PASSWORD})  # fmt: skip
    assert done.status_code == 302
    assert "Changed the password of cleo" in _text(_get(client, "/users"))
    assert _get(cleo, "/").headers["Location"] == "/signin"
    assert _get(client, "/users").status_code == 200  # ada's own session is untouched


def test_you_change_your_own_password_with_the_current_one(
    app: Flask, client: FlaskClient, web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    elsewhere = app.test_client()
    sign_in(elsewhere, "otto")
    csrf = sign_in(client, "otto")
    assert _get(client, "/account/password").status_code == 200
    url = "/account/password"
    new = {"csrf_token": csrf, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    wrong = _post(client, url, {**new, "current_password": "a guess"})
    assert wrong.status_code == 403 and "current password is not right" in _text(wrong)
    assert NEW_PASSWORD not in _text(wrong)
    done = _post(client, url, {**new, "current_password": PASSWORDS["otto"]})
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert "Changed your password" in _text(_get(client, "/"))  # this session stays
    assert _get(elsewhere, "/").headers["Location"] == "/signin"  # the other one ended
    # The passwords reach neither the log nor the database file (only a salted hash).
    for password in (NEW_PASSWORD, PASSWORDS["otto"]):
        assert password not in caplog.text
        for stored in web_vault.data_dir.iterdir():  # vault.db and its write-ahead log
            assert stored.is_dir() or password.encode() not in stored.read_bytes(), stored


def test_a_token_is_shown_once_and_nowhere_else(client: FlaskClient, web_vault: WebVault) -> None:
    csrf = sign_in(client, "ada")
    made = _post(client, "/tokens", {"csrf_token": csrf, "name": "etl-nightly", "role": "creator"})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    html = _text(made)
    token = html.split('id="token" class="token" readonly value="', 1)[1].split('"', 1)[0]
    assert token.startswith("gwv_") and html.count(token) == 1
    assert "will not be shown again" in html
    assert all(token not in value for _, value in made.headers.items())
    listed = _text(_get(client, "/tokens"))
    assert "etl-nightly" in listed and token not in listed
    api = client.get(f"{API}/credentials", base_url=BASE_URL, headers=bearer(token))
    assert api.status_code == 200
    with unchanged(web_vault):
        again = _post(client, "/tokens", {"csrf_token": csrf, "name": "etl-nightly",
                                          "role": "admin"})  # fmt: skip
    assert again.status_code == 409 and 'value="etl-nightly"' in _text(again)
    assert "gwv_" not in _text(again)


@pytest.mark.parametrize("name", ["../x", "", "x" * 200, "na me", "\u0435tl"])
def test_a_token_name_outside_the_safe_set_is_refused(
    client: FlaskClient, web_vault: WebVault, name: str
) -> None:
    csrf = sign_in(client, "ada")
    with unchanged(web_vault):
        response = _post(client, "/tokens", {"csrf_token": csrf, "name": name, "role": "creator"})
    assert response.status_code == 400 and 'id="token-error"' in _text(response)
    assert "gwv_" not in _text(response)


def test_revoking_a_token_asks_then_flashes(client: FlaskClient, web_vault: WebVault) -> None:
    token = new_token(web_vault, "creator", "etl")
    csrf = sign_in(client, "ada")
    question = _text(_get(client, "/tokens/etl/revoke"))
    assert "Revoke the API token etl?" in question and 'action="/tokens/etl/revoke"' in question
    revoked = _post(client, "/tokens/etl/revoke", {"csrf_token": csrf})
    assert revoked.status_code == 302
    listed = _text(_get(client, "/tokens"))
    assert "Revoked API token etl." in listed and 'href="/tokens/etl/revoke"' not in listed
    assert (
        client.get(f"{API}/credentials", base_url=BASE_URL, headers=bearer(token)).status_code
        == 401
    )
    assert _get(client, "/tokens/etl/revoke").status_code == 404
    assert _post(client, "/tokens/etl/revoke", {"csrf_token": csrf}).status_code == 404


def test_a_token_named_like_a_user_is_not_that_user(
    client: FlaskClient, web_vault: WebVault
) -> None:
    _add_admin(web_vault)
    headers = {**ORIGIN, **bearer(new_token(web_vault, "admin", "ada"))}
    html = _text(client.get("/users", base_url=BASE_URL, headers=headers))
    assert "(you)" not in html
    removed = _post(client, "/users/ada/remove", {}, headers)
    assert removed.status_code == 302 and removed.headers["Location"] == "/users"
    assert not any("session" in c for c in removed.headers.getlist("Set-Cookie"))


def test_a_non_admin_sees_no_users_or_tokens(client: FlaskClient) -> None:
    sign_in(client, "cleo")
    html = _text(_get(client, "/"))
    assert 'href="/users"' not in html and 'href="/tokens"' not in html
    assert 'href="/account/password"' in html
    for url in ("/users", "/tokens", "/users/ada/edit", "/users/ada/remove", "/tokens/x/revoke"):
        assert _get(client, url).status_code == 403, url


CHANGES = [
    ("/users", {"name": "eve", "role": "admin", "password": NEW_PASSWORD,
                "password_again": NEW_PASSWORD}),
    ("/users/ada/role", {"role": "auditor", "confirmed": "yes"}),
    ("/users/otto/role", {"role": "admin"}),
    ("/users/ada/password", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}),
    ("/users/otto/remove", {}),
    ("/tokens", {"name": "evil", "role": "admin"}),
    ("/tokens/etl/revoke", {}),
    ("/account/password", {"current_password": PASSWORDS["cleo"], "password": NEW_PASSWORD,
                           "password_again": NEW_PASSWORD}),
]  # fmt: skip


# Who is refused which change: a creator everything but its own password, a
# session without its CSRF token or from another origin everything, and an
# admin API token the one change that needs a signed-in user's password.
REFUSALS = [
    (how, url, data)
    for how in ("creator", "no-csrf", "wrong-origin", "admin-token")
    for url, data in CHANGES
    if (how, url == "/account/password") not in {("creator", True), ("admin-token", False)}
]


@pytest.mark.parametrize(("how", "url", "data"), REFUSALS, ids=[f"{h}-{u}" for h, u, _ in REFUSALS])
def test_a_change_without_the_right_or_the_proof_changes_nothing(
    client: FlaskClient, web_vault: WebVault, how: str, url: str, data: dict[str, str]
) -> None:
    new_token(web_vault, "creator", "etl")
    headers = ORIGIN
    if how == "admin-token":
        headers = {**ORIGIN, **bearer(new_token(web_vault, "admin", "ops"))}
    else:
        csrf = sign_in(client, "cleo" if how == "creator" else "ada")
        data = data if how == "no-csrf" else {**data, "csrf_token": csrf}
        if how == "wrong-origin":
            headers = {"Origin": "https://evil.example"}
    with unchanged(web_vault):
        response = _post(client, url, data, headers)
    assert response.status_code == 403, _text(response)
    assert "Traceback" not in _text(response) and NEW_PASSWORD not in _text(response)
