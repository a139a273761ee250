"""The API of a credential's life: DELETE (soft), POST .../restore, .../disable,
.../enable, .../purge, and GET /credentials?deleted=true; who may, hostile
input, and a purge that leaves nothing of the secret in the database file."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

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
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.credentials import CredentialService
from vault.data_dir import DB_FILE

SOURCE = "sales-db"  # stored by ada (owner "user:ada")
URL = f"{API}/credentials/{SOURCE}"
Headers = dict[str, str]


@pytest.fixture
def admin(web_vault: WebVault) -> Headers:
    return bearer(new_token(web_vault, "admin"))


def post(client: FlaskClient, url: str, headers: Headers) -> TestResponse:
    return client.post(url, base_url=BASE_URL, headers=headers)


def listed(client: FlaskClient, headers: Headers, query: str = "") -> list[str]:
    response = client.get(f"{API}/credentials{query}", base_url=BASE_URL, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [row["name"] for row in response.get_json()]


def test_delete_restore_disable_enable_purge(
    app: Flask, client: FlaskClient, web_vault: WebVault, admin: Headers
) -> None:
    store_as_ada(app, web_vault, SOURCE)
    assert client.delete(URL, base_url=BASE_URL, headers=admin).status_code == 204
    assert listed(client, admin) == []
    assert listed(client, admin, "?deleted=true") == [SOURCE]
    # A deleted credential opens for nobody, and its name is reserved.
    message = assert_api_error(post(client, f"{URL}/test", admin), 409, "credential_unavailable")
    assert "restore" in message
    again = put_credential(client, SOURCE, sealed_body(web_vault, SOURCE), admin)
    assert_api_error(again, 409, "credential_unavailable")

    restored = post(client, f"{URL}/restore", admin)
    assert restored.status_code == 200 and restored.get_json()["state"] == "active"
    disabled = post(client, f"{URL}/disable", admin).get_json()
    assert (disabled["state"], disabled["version"]) == ("disabled", 1)
    assert_api_error(post(client, f"{URL}/disable", admin), 409, "conflict")
    assert post(client, f"{URL}/enable", admin).get_json()["state"] == "active"
    assert_api_error(post(client, f"{URL}/purge", admin), 409, "conflict")  # delete it first

    client.delete(URL, base_url=BASE_URL, headers=admin)
    assert post(client, f"{URL}/purge", admin).status_code == 204
    assert listed(client, admin, "?deleted=true") == []
    assert_api_error(client.get(URL, base_url=BASE_URL, headers=admin), 404)


def test_a_creator_manages_its_own_and_only_an_admin_purges(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, SOURCE)  # not cleo's
    cleo = session_headers(sign_in(client, "cleo"))
    with unchanged(web_vault):
        for verb in ("disable", "restore", "purge"):
            assert_api_error(post(client, f"{URL}/{verb}", cleo), 403, "forbidden")
        assert_api_error(client.delete(URL, base_url=BASE_URL, headers=cleo), 403)
    own = put_credential(client, "cleo-db", sealed_body(web_vault, "cleo-db"), cleo)
    assert own.status_code == 201
    cleo_db = f"{API}/credentials/cleo-db"
    assert post(client, f"{cleo_db}/disable", cleo).status_code == 200
    assert client.delete(cleo_db, base_url=BASE_URL, headers=cleo).status_code == 204
    assert listed(client, cleo, "?deleted=true") == ["cleo-db"]
    with unchanged(web_vault):
        assert_api_error(post(client, f"{cleo_db}/purge", cleo), 403, "forbidden")
    assert post(client, f"{cleo_db}/restore", cleo).get_json()["state"] == "disabled"
    auditor = bearer(new_token(web_vault, "auditor"))
    with unchanged(web_vault):
        assert_api_error(post(client, f"{cleo_db}/enable", auditor), 403, "forbidden")


def test_a_browser_session_needs_its_csrf_token(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, SOURCE)
    sign_in(client, "ada")
    with unchanged(web_vault):
        for verb in ("disable", "restore", "purge"):
            stale = post(client, f"{URL}/{verb}", session_headers("not-the-token"))
            assert_api_error(stale, 403, "forbidden")


def test_hostile_names_flags_and_methods(
    app: Flask, client: FlaskClient, web_vault: WebVault, admin: Headers
) -> None:
    store_as_ada(app, web_vault, SOURCE)
    with unchanged(web_vault):
        for query in ("?deleted=yes", "?deleted=1", "?deleted=", "?deleted=true&deleted=true",
                      "?deleted=TRUE", "?purge=true"):  # fmt: skip
            response = client.get(f"{API}/credentials{query}", base_url=BASE_URL, headers=admin)
            assert_api_error(response, 400, "invalid_input")
        for name in ("no-such", "..%2Fsales-db", "x" * 300, "%00", "sales-db%0A"):
            for verb in ("restore", "disable", "enable", "purge"):
                response = post(client, f"{API}/credentials/{name}/{verb}", admin)
                assert response.status_code in (400, 404), (name, verb)
                assert_api_error(response, response.status_code)
        for verb in ("restore", "disable", "enable", "purge"):
            for method in ("get", "put", "delete"):
                response = getattr(client, method)(
                    f"{URL}/{verb}", base_url=BASE_URL, headers=admin
                )
                assert_api_error(response, 405)
        # A purge is its own verb: a flag on DELETE is refused, not taken for a soft delete.
        purge_flag = client.delete(f"{URL}?purge=true", base_url=BASE_URL, headers=admin)
        assert "purge" in assert_api_error(purge_flag, 400, "invalid_input")
        for verb in ("restore", "disable", "purge"):
            flagged = post(client, f"{URL}/{verb}?force=true", admin)
            assert "force" in assert_api_error(flagged, 400, "invalid_input")


def test_the_deleted_pages_link_to_deleted_pages(
    app: Flask, client: FlaskClient, web_vault: WebVault, admin: Headers
) -> None:
    for name in ("a-db", "b-db", "c-db"):
        put_credential(client, name, sealed_body(web_vault, name), admin)
        client.delete(f"{API}/credentials/{name}", base_url=BASE_URL, headers=admin)
    put_credential(client, "live-db", sealed_body(web_vault, "live-db"), admin)
    first = client.get(f"{API}/credentials?deleted=true&limit=2", base_url=BASE_URL, headers=admin)
    assert [row["name"] for row in first.get_json()] == ["a-db", "b-db"]
    assert first.headers["Link"] == (
        f'<{API}/credentials?after=b-db&limit=2&deleted=true>; rel="next"'
    )
    assert listed(client, admin, "?deleted=true&limit=2&after=b-db") == ["c-db"]
    assert listed(client, admin, "?deleted=false") == ["live-db"]


def test_a_purge_through_the_api_leaves_nothing_in_the_database_file(
    app: Flask, client: FlaskClient, web_vault: WebVault, admin: Headers
) -> None:
    store_as_ada(app, web_vault, SOURCE)
    with web_vault.gateway() as gateway:
        sealed = CredentialService(gateway).get(SOURCE).sealed
    client.delete(URL, base_url=BASE_URL, headers=admin)

    def files_hold(value: bytes) -> bool:  # the file, its WAL and shm
        return any(value in path.read_bytes() for path in web_vault.data_dir.glob(f"{DB_FILE}*"))

    assert files_hold(sealed.wrapped_dek)  # deleted softly: still there, restorable
    assert post(client, f"{URL}/purge", admin).status_code == 204
    web_vault.handle.close()  # the server's kept connections let go, as at its stop
    assert not files_hold(sealed.wrapped_dek) and not files_hold(sealed.ciphertext)
