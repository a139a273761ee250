"""The owner's dates on the pages: the form's fields, the read-only view, the
Due page; and, in real Chromium, the dates saved alone (without the secret)."""

from __future__ import annotations

import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect

from tests.web.api_helpers import store_as_ada
from tests.web.test_browser_credential_form import ApiCalls, expect_field_error
from tests.web.test_browser_entry import sign_in as sign_in_browser
from tests.web_fixtures import BASE_URL, LiveServer, WebVault, sign_in
from vault.credential_life import life_change_of
from vault.credentials import CredentialService


def set_dates(web_vault: WebVault, name: str, *dates: str) -> None:
    with web_vault.gateway() as gateway:
        CredentialService(gateway).change_life(name, life_change_of(*dates))


def test_the_form_and_the_view_show_the_dates_as_typed(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, "sales")
    set_dates(web_vault, "sales", "2027-03-31", "90d", "dba@example.com")
    sign_in(client, "ada")
    form = client.get("/credentials/sales", base_url=BASE_URL).get_data(as_text=True)
    assert 'id="expires_at" value="2027-03-31T00:00:00+00:00"' in form
    assert 'id="rotate_every" value="90d"' in form
    assert 'id="contact" type="email" value="dba@example.com"' in form
    auditor = Flask.test_client(app)
    sign_in(auditor, "otto")
    view = auditor.get("/credentials/sales", base_url=BASE_URL).get_data(as_text=True)
    assert 'id="expires_at"' not in view
    assert "<dt>Rotate every</dt><dd>90d</dd>" in view and "mailto:dba@example.com" in view


def test_the_due_page_lists_what_is_due_and_refuses_a_bad_window(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, "sales")
    store_as_ada(app, web_vault, "hr")
    set_dates(web_vault, "sales", "2020-01-01")
    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=40)).date()
    set_dates(web_vault, "hr", soon.isoformat())
    sign_in(client, "otto")  # an auditor reads it too
    page = client.get("/due", base_url=BASE_URL).get_data(as_text=True)
    assert "sales" in page and "<strong>overdue</strong>" in page and ">hr<" not in page
    wider = client.get("/due?within=6w", base_url=BASE_URL).get_data(as_text=True)
    assert ">hr<" in wider and 'value="6w"' in wider
    assert "sales" in client.get("/due?within=", base_url=BASE_URL).get_data(as_text=True)


@pytest.mark.parametrize("query", ["?within=1y", "?within=<b>", "?within=1d&within=2d", "?x=1"])
def test_a_bad_window_on_the_due_page_is_one_clear_400(
    client: FlaskClient, web_vault: WebVault, query: str
) -> None:
    sign_in(client, "ada")
    response = client.get(f"/due{query}", base_url=BASE_URL)
    assert response.status_code == 400
    assert "<b>" not in response.get_data(as_text=True)  # never reflected as markup


def test_the_dates_are_saved_alone_and_the_due_page_shows_them(
    page: Page, live_server: LiveServer, app: Flask
) -> None:
    store_as_ada(app, live_server.web_vault, "sales")
    sign_in_browser(page, live_server, "ada")
    calls = ApiCalls(page)
    page.goto(f"{live_server.url}/credentials/sales")
    expect(page.locator("#thumbprint")).not_to_have_text("(loading…)")
    page.fill("#rotate_every", "1d")
    page.fill("#contact", "not an address")
    page.click("#save")
    expect(page.locator("#contact:invalid")).to_have_count(1)  # the browser's own check
    page.fill("#contact", "dba@example.com")
    page.fill("#expires_at", "2027-03-31T10:00")
    page.click("#save")
    expect_field_error(page, "expires_at", "no offset")  # the gateway's words, beside the field
    page.fill("#expires_at", "")
    page.click("#save")
    page.wait_for_url(f"{live_server.url}/credentials")
    expect(page.locator(".flash")).to_have_text("Saved credential sales (version 1).")
    assert [method for method, _ in calls.seen] == ["PATCH", "PATCH"]  # never the secret
    page.goto(f"{live_server.url}/due")
    expect(page.locator("table tbody tr")).to_have_count(1)
    expect(page.locator("table tbody")).to_contain_text("dba@example.com")
