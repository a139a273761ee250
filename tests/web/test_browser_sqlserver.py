"""A SQL Server credential entered on the page, in real Chromium: the type is offered,
its fields follow it, the browser seals it (seal.js) and the gateway stores it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.web.test_browser_entry import sign_in
from tests.web_fixtures import LiveServer
from vault.credentials import CredentialService


def test_a_sql_server_credential_is_sealed_in_the_page_and_stored(
    page: Page, live_server: LiveServer, canary: str
) -> None:
    sign_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/credentials/new")
    expect(page.locator("#thumbprint")).not_to_have_text("(loading…)")
    page.fill("#name", "sales-mssql")
    page.select_option("#type", "sqlserver")
    expect(page.locator("#server-hint")).to_contain_text("1433")
    page.fill("#server", "sql.example.com:1433")
    page.fill("#database", "sales")
    page.select_option("#tls", "verify-full")
    page.select_option("#auth", "basic")
    page.fill("#username", "report")
    page.fill("#secret", canary)
    page.click("#save")
    page.wait_for_url(f"{live_server.url}/credentials")
    expect(page.locator(".flash")).to_have_text("Saved credential sales-mssql (version 1).")
    with live_server.web_vault.gateway() as gateway:
        shown = CredentialService(gateway).get("sales-mssql").metadata()
    assert (shown["type"], shown["server"], shown["tls"], shown["username"]) == (
        "sqlserver", "sql.example.com:1433", "verify-full", "report",
    )  # fmt: skip
    assert canary.encode() not in b"".join(live_server.bodies)
