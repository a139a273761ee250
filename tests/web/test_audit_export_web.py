"""POST /audit/export, the audit page's Export button, through the Flask client:
the download is ``gwvault audit export``'s signed file and verifies with the
CLI's own check (``vault.audit.export.verify_export``); it is recorded; and a
caller who may not read the trail, a forged or stale form, or a filter the
signed export cannot honour gets one clear refusal that records nothing.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.web.api_helpers import ORIGIN, bearer, new_token, unchanged
from tests.web.test_stale_authorization import HeldBody
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.access.accounts import Accounts
from vault.audit.export import verify_export
from web.access import SESSION_COOKIE_PREFIX
from web.pages.audit_export import export_filename

EXPORT = "/audit/export"
FILENAME = re.compile(r'attachment; filename="gwvault-audit-gw-test-\d{8}T\d{6}Z\.jsonl"')


def _exports(web_vault: WebVault) -> tuple[int, int]:
    """How many exports the trail records, and how many export checkpoints were signed."""
    with web_vault.gateway() as gateway:
        entries = gateway.store.rows(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'audit.exported'", []
        )
        checkpoints = gateway.store.rows(
            "SELECT count(*) AS n FROM audit_checkpoints WHERE reason = 'export'", []
        )
    return int(entries[0]["n"]), int(checkpoints[0]["n"])


def _export(
    client: FlaskClient, csrf: str, *, query: str = "", form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:  # fmt: skip
    return client.post(
        f"{EXPORT}{query}",
        data={"csrf_token": csrf, **(form or {})},
        base_url=BASE_URL,
        headers=ORIGIN if headers is None else headers,
    )


def _verify(web_vault: WebVault, body: bytes, tmp_path: Path) -> str:
    """Verify as ``gwvault audit verify-export`` does; the export's author."""
    saved = tmp_path / "export.jsonl"
    saved.write_bytes(body)
    with web_vault.gateway() as gateway:
        certificate = gateway.certificate()
    header, report = verify_export(saved, certificate)
    assert report.ok, report.summary()
    return header.exported_by


@pytest.mark.parametrize("name", ["otto", "ada"])
def test_an_auditor_or_admin_downloads_a_signed_export_that_verifies(
    client: FlaskClient, web_vault: WebVault, tmp_path: Path, name: str
) -> None:
    csrf = sign_in(client, name)
    response = _export(client, csrf)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_streamed
    assert response.mimetype == "application/jsonl"
    assert FILENAME.fullmatch(response.headers["Content-Disposition"])
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data()
    assert int(response.headers["Content-Length"]) == len(body)
    assert _verify(web_vault, body, tmp_path) == f"user:{name}"
    assert _exports(web_vault) == (1, 1)
    with web_vault.gateway() as gateway:
        recorded = gateway.store.rows(
            "SELECT actor, channel FROM audit_events WHERE action = 'audit.exported'", []
        )
    assert (recorded[0]["actor"], recorded[0]["channel"]) == (f"user:{name}", "web")


def test_an_auditor_token_may_export_too(
    client: FlaskClient, web_vault: WebVault, tmp_path: Path
) -> None:
    # A program with an auditor's token (no session, so no CSRF token to echo).
    token = new_token(web_vault, "auditor", "nightly")
    response = client.post(EXPORT, base_url=BASE_URL, headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert _verify(web_vault, response.get_data(), tmp_path) == "token:nightly"


def _refused(
    web_vault: WebVault, response: TestResponse, status: int, words: str
) -> None:  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == status, html
    assert words in html and "Traceback" not in html
    assert "Content-Disposition" not in response.headers
    assert _exports(web_vault) == (0, 0)


def test_anonymous_is_sent_to_sign_in(client: FlaskClient, web_vault: WebVault) -> None:
    with unchanged(web_vault):
        response = _export(client, "")
    assert (response.status_code, response.headers["Location"]) == (302, "/signin")
    assert _exports(web_vault) == (0, 0)


def test_a_creator_gets_a_403_page(client: FlaskClient, web_vault: WebVault) -> None:
    csrf = sign_in(client, "cleo")
    with unchanged(web_vault):
        response = _export(client, csrf)
    _refused(web_vault, response, 403, "a creator may not do that (audit.read)")
    token = new_token(web_vault, "creator")
    response = client.post(EXPORT, base_url=BASE_URL, headers=bearer(token))
    _refused(web_vault, response, 403, "audit.read")


@pytest.mark.parametrize(
    ("case", "words"),
    [("no-token", "the form is stale"), ("wrong-token", "the form is stale"),
     ("other-origin", "origin check"), ("no-origin", "origin check")],
)  # fmt: skip
def test_a_forged_form_is_refused(
    client: FlaskClient, web_vault: WebVault, case: str, words: str
) -> None:
    csrf = sign_in(client, "otto")
    sent = {
        "no-token": ("", ORIGIN),
        "wrong-token": ("x" + csrf[1:], ORIGIN),
        "other-origin": (csrf, {"Origin": "https://attacker.example"}),
        "no-origin": (csrf, {}),
    }[case]
    _refused(web_vault, _export(client, sent[0], headers=sent[1]), 403, words)


# A filter (in the URL or the form) asks for less than the signed export can be.
FILTERS = {
    "credential-query": ("?credential=sales-db", {}),
    "action-form": ("", {"action": "credential.*"}),
    "since-and-limit": ("?since=2026-01-01&limit=5", {}),
    "unknown": ("?format=csv", {}),
    "hostile": ("?credential=%27%20OR%201%3D1", {"x" * 300: "<script>"}),
}


@pytest.mark.parametrize("case", sorted(FILTERS))
def test_a_filter_is_refused_not_ignored(
    client: FlaskClient, web_vault: WebVault, case: str
) -> None:
    csrf = sign_in(client, "otto")
    query, form = FILTERS[case]
    with unchanged(web_vault):
        response = _export(client, csrf, query=query, form=form)
    _refused(web_vault, response, 400, "the signed export is always the whole trail")
    assert "<script>" not in response.get_data(as_text=True)
    assert len(response.get_data()) < 20_000


def test_get_and_an_oversized_form_change_nothing(client: FlaskClient, web_vault: WebVault) -> None:
    csrf = sign_in(client, "otto")
    _refused(web_vault, client.get(EXPORT, base_url=BASE_URL), 405, "405")
    response = _export(client, csrf, form={"pad": "x" * 200_000})
    assert response.status_code == 413
    assert _exports(web_vault) == (0, 0)


def test_the_page_offers_the_export_with_its_csrf_token(client: FlaskClient) -> None:
    csrf = sign_in(client, "otto")
    html = client.get("/audit?action=user.*", base_url=BASE_URL).get_data(as_text=True)
    form = html.split('<form method="post" action="/audit/export" class="card export">', 1)[1]
    assert f'<input type="hidden" name="csrf_token" value="{csrf}">' in form.split("</form>")[0]
    assert "whatever the filter" in form


@pytest.mark.parametrize(
    ("gateway_name", "expected"),
    [("gw-test", "gw-test"),
     ('gw "a"; filename=x.exe\r\nSet-Cookie: y', "gw-a-filename-x.exe-Set-Cookie-y"),
     ("Zürich gateway", "Z-rich-gateway"),
     ("ÄÖÜ", "gateway"),
     ("..", "gateway"),
     ("n" * 80, "n" * 64)],
)  # fmt: skip
def test_the_file_name_holds_only_safe_characters(gateway_name: str, expected: str) -> None:
    name = export_filename(gateway_name, "2026-12-06T07:33:10+00:00")
    assert name == f"gwvault-audit-{expected}-20261206T073310Z.jsonl"


@pytest.mark.parametrize("change", ["signed-out", "removed"])
def test_a_session_ended_while_the_form_arrives_exports_nothing(
    app: Flask, web_vault: WebVault, change: str
) -> None:
    # The edge's check passes when the headers arrive; the body (the CSRF token)
    # is held while the session ends, so only the check in the write can refuse.
    browser = app.test_client()
    csrf = sign_in(browser, "otto")
    cookie = browser.get_cookie(SESSION_COOKIE_PREFIX + "443", domain="localhost")
    assert cookie is not None
    data = urlencode({"csrf_token": csrf}).encode()
    held = HeldBody(data)
    answer: list[TestResponse] = []
    sender = threading.Thread(
        target=lambda: answer.append(
            browser.post(
                EXPORT, input_stream=held, content_length=len(data), base_url=BASE_URL,
                content_type="application/x-www-form-urlencoded", headers=ORIGIN,
            )
        )
    )  # fmt: skip
    sender.start()
    try:
        assert held.reading.wait(timeout=30)
        with web_vault.gateway() as gateway:
            if change == "signed-out":
                Accounts(gateway).close_session(cookie.value)
            else:
                Accounts(gateway).remove_user("otto")
    finally:
        held.release.set()
        sender.join(timeout=30)
    _refused(web_vault, answer[0], 403, "no longer valid")
