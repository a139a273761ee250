"""The credential list (API and page) shows each credential's last test, result
and next due time; the driver's words of the last test only to admins."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flask.testing import FlaskClient

from tests.web.api_helpers import API, bearer, new_token
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.access.destination_policy import allow_sqlite_dir
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload


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
