"""A SQLite credential names a database that is there (issue 17), through the API.

A web caller is told only where a connection test would answer (an allowed
directory): elsewhere a put must not reveal whether a file exists (T-CN-4).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flask import Flask

from tests.sealing import seal
from tests.web.api_helpers import (
    assert_api_error,
    certificate_of,
    put_credential,
    session_headers,
    unchanged,
)
from tests.web_fixtures import WebVault, sign_in
from vault.access.destination_policy import allow_sqlite_dir
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload


def _sqlite_body(web_vault: WebVault, name: str, path: Path) -> dict[str, str]:
    target = DataSource("sqlite", str(path), tls="disable")
    payload = CredentialPayload("anonymous", None, None)
    token = seal(certificate_of(web_vault), name, target, payload)
    return {"type": "sqlite", "server": str(path), "encrypted_credential": token}


def _database(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    return path


def test_a_missing_sqlite_file_under_an_allowed_dir_is_refused_and_changes_nothing(
    app: Flask, web_vault: WebVault, tmp_path: Path
) -> None:
    with web_vault.gateway() as gateway:
        allow_sqlite_dir(gateway, str(tmp_path))
    ada = app.test_client()
    headers = session_headers(sign_in(ada, "ada"))
    missing, folder = tmp_path / "missing.db", tmp_path / "folder"
    folder.mkdir()
    for path in (missing, folder):
        with unchanged(web_vault):
            response = put_credential(ada, "app", _sqlite_body(web_vault, "app", path), headers)
            message = assert_api_error(response, 400)
        assert str(path) in message
    present = _database(tmp_path / "app.db")
    response = put_credential(ada, "app", _sqlite_body(web_vault, "app", present), headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert not missing.exists()  # checked, never created


def test_outside_the_allowed_dirs_a_put_reveals_nothing_about_the_file(
    app: Flask, web_vault: WebVault, tmp_path: Path
) -> None:
    ada = app.test_client()
    headers = session_headers(sign_in(ada, "ada"))
    answers = [
        put_credential(ada, name, _sqlite_body(web_vault, name, path), headers).status_code
        for name, path in (("a", tmp_path / "nothing.db"), ("b", _database(tmp_path / "b.db")))
    ]
    assert answers == [201, 201]  # the same answer whether the file exists or not
