"""The /audit page and GET /api/v1/audit/verify check only the entries after the
last full check's mark (T-AU-15), through real requests on the Flask app."""

from __future__ import annotations

import sqlite3

from flask.testing import FlaskClient

from tests.web.api_helpers import API, bearer, new_token
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.audit.background import full_check_and_mark
from vault.data_dir import DB_FILE

VERIFY = f"{API}/audit/verify"


def _sql(
    web_vault: WebVault, sql: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    db = sqlite3.connect(web_vault.data_dir / DB_FILE)
    try:
        with db:
            return db.execute(sql, params).fetchall()
    finally:
        db.close()


def _tamper(web_vault: WebVault, seq: int) -> None:
    _sql(web_vault, "DROP TRIGGER IF EXISTS audit_events_no_update")
    _sql(web_vault, "UPDATE audit_events SET actor = 'x' WHERE seq = ?", (seq,))


def _marked(web_vault: WebVault) -> int:
    with web_vault.gateway() as gateway:
        assert full_check_and_mark(gateway).ok
    through = _sql(web_vault, "SELECT through_seq FROM audit_verified")[0][0]
    assert isinstance(through, int)
    return through


def test_the_api_checks_from_the_mark_and_reports_an_entry_edited_after_it(
    client: FlaskClient, web_vault: WebVault
) -> None:
    auditor = bearer(new_token(web_vault, "auditor"))
    marked = _marked(web_vault)
    sign_in(client, "otto")  # newer entries: a sign-in
    report = client.get(VERIFY, base_url=BASE_URL, headers=auditor).get_json()
    assert report["ok"] is True and report["full_check_through"] == marked
    assert report["first_seq"] == marked and report["full_check_by"] == "background"
    assert "checked now, those before by the full check at" in report["summary"]
    newest = int(str(_sql(web_vault, "SELECT max(seq) FROM audit_events")[0][0]))
    _tamper(web_vault, newest)
    failed = client.get(VERIFY, base_url=BASE_URL, headers=auditor).get_json()
    assert (failed["ok"], failed["first_bad_seq"]) == (False, newest), failed["summary"]


def test_the_page_reports_an_entry_edited_after_the_mark(
    client: FlaskClient, web_vault: WebVault
) -> None:
    marked = _marked(web_vault)
    sign_in(client, "otto")
    html = client.get("/audit", base_url=BASE_URL).get_data(as_text=True)
    assert '<p class="verdict verdict-ok" role="status">OK: ' in html
    assert f"({marked}.." in html and "checked now" in html
    _tamper(web_vault, marked + 1)
    page = client.get("/audit", base_url=BASE_URL)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'role="alert">FAILED at entry {marked + 1}: ' in html


def test_a_forged_mark_is_refused_by_the_page_and_the_api(
    client: FlaskClient, web_vault: WebVault
) -> None:
    auditor = bearer(new_token(web_vault, "auditor"))
    _marked(web_vault)
    _sql(web_vault, "UPDATE audit_verified SET passed_at = '2099-01-01T00:00:00+00:00'")
    report = client.get(VERIFY, base_url=BASE_URL, headers=auditor).get_json()
    assert report["ok"] is False and "changed outside gwvault" in report["problem"]
    sign_in(client, "otto")
    html = client.get("/audit", base_url=BASE_URL).get_data(as_text=True)
    assert "verdict-failed" in html and "verdict-ok" not in html
