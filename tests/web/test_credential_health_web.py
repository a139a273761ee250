"""The credential list (API and page) shows each credential's last test, result
and next due time; the driver's words of the last test only to admins."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flask.testing import FlaskClient

from tests.web.api_helpers import API, assert_api_error, bearer, new_token, unchanged
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.access.destination_policy import allow_sqlite_dir
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.health.run_request import requested_since


def _tested_and_untested(web_vault: WebVault, tmp_path: Path) -> Path:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    anonymous = CredentialPayload("anonymous", None, None)
    with web_vault.gateway() as gateway:
        allow_sqlite_dir(gateway, str(tmp_path))
        service = CredentialService(gateway)
        service.put("app", DataSource("sqlite", str(db)), anonymous)
        service.put("later", DataSource("sqlite", str(db)), anonymous)
        assert service.test("app").ok
    return db


def test_the_list_shows_each_credentials_health_and_its_words_to_admins_only(
    client: FlaskClient, web_vault: WebVault, tmp_path: Path
) -> None:
    db = _tested_and_untested(web_vault, tmp_path)
    listed = {}
    for role in ("admin", "creator"):
        response = client.get(
            f"{API}/credentials", base_url=BASE_URL, headers=bearer(new_token(web_vault, role))
        )
        assert response.status_code == 200
        listed[role] = {row["name"]: row for row in response.get_json()}
    tested = listed["admin"]["app"]
    assert tested["result"] == "ok" and tested["last_tested_at"] and tested["next_due_at"]
    assert tested["next_due_at"] > tested["last_tested_at"]
    assert str(db) in tested["result_detail"]
    assert "result_detail" not in listed["creator"]["app"]
    assert listed["creator"]["app"]["result"] == "ok"
    untested = listed["admin"]["later"]
    assert untested["result"] is None and untested["next_due_at"] is None

    sign_in(client, "cleo")
    page = client.get("/credentials", base_url=BASE_URL).get_data(as_text=True)
    assert "<th>Last test</th>" in page and "due now" in page
    assert "SQLite 3 database" in tested["result_detail"]
    assert "SQLite 3 database" not in page  # the driver's words are not on the page


def test_an_admin_asks_for_every_credential_to_be_tested_now(
    client: FlaskClient, web_vault: WebVault
) -> None:
    # A run outlasts a request: the API records the ask (202) and the scheduler's
    # next tick tests every enabled credential last tested before it.
    admin, creator = bearer(new_token(web_vault, "admin")), bearer(new_token(web_vault, "creator"))
    url = f"{API}/test-all"
    with unchanged(web_vault):
        assert_api_error(client.post(url, base_url=BASE_URL, headers=creator), 403, "forbidden")
        refused = client.post(f"{url}?now=1", base_url=BASE_URL, headers=admin)
        assert_api_error(refused, 400, "invalid_input")
        assert_api_error(
            client.get(url, base_url=BASE_URL, headers=admin), 405, "method_not_allowed"
        )
    answer = client.post(url, base_url=BASE_URL, headers=admin)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    body = answer.get_json()
    assert set(body) == {"requested_at", "within_seconds"} and body["within_seconds"] == 60
    with web_vault.gateway() as gateway:
        assert requested_since(gateway) is not None
