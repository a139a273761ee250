"""The credential form and list as a gateway admin and a creator use them, in real
Chromium against the real endpoint: a stored credential tested and kept without
its secret, a changed target that asks for the secret again before anything is
sent, fields that follow the type, the browser's own checks with the error
beside the field, what a caller may not change shown read-only, the limits said
before sealing, and a message after each save and delete.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from tests.accessibility import assert_accessible
from tests.service_fixtures import ServiceLogin
from tests.web.test_browser_entry import ARTIFACTS, fill_form, sign_in
from tests.web_fixtures import LiveServer
from vault.access.destination_policy import allow_sqlite_dir
from vault.connectors.cleartext import cleartext_warning
from vault.connectors.connection import SUMMARIES
from vault.credentials import CredentialService
from vault.format.data_source import DataSource, parse_data_source_type, parse_tls_mode


class ApiCalls:
    """The credential API requests the page sent (the certificate fetch aside)."""

    def __init__(self, page: Page) -> None:
        self.seen: list[tuple[str, str]] = []
        page.on("request", self._record)

    def _record(self, request: Request) -> None:
        if "/api/v1/credentials" in request.url:
            self.seen.append((request.method, request.url))

    def count(self) -> int:
        return len(self.seen)


@pytest.fixture
def api_calls(page: Page) -> Iterator[ApiCalls]:
    yield ApiCalls(page)


def store_with_the_form(page: Page, server: LiveServer, name: str, pg: ServiceLogin) -> None:
    page.goto(f"{server.url}/credentials/new")
    expect(page.locator("#thumbprint")).not_to_have_text("(loading…)")
    fill_form(page, name, pg, pg.password)
    page.click("#save")
    page.wait_for_url(f"{server.url}/credentials")


def expect_field_error(page: Page, field: str, text: str | re.Pattern[str]) -> None:
    """The error shows beside ``field``, and the field says it is invalid and where."""
    expect(page.locator(f"#{field}-error")).to_be_visible()
    expect(page.locator(f"#{field}-error")).to_contain_text(text)
    expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    described = page.locator(f"#{field}").get_attribute("aria-describedby") or ""
    assert f"{field}-error" in described.split()


def test_a_saved_credential_tests_with_the_stored_secret_and_asks_for_it_on_a_new_server(
    page: Page, live_server: LiveServer, private_postgres: ServiceLogin, api_calls: ApiCalls
) -> None:
    sign_in(page, live_server, "ada")
    store_with_the_form(page, live_server, "sales-pg", private_postgres)
    expect(page.locator(".flash")).to_have_text("Saved credential sales-pg (version 1).")
    assert_accessible(page)
    # The list's dates are <time> elements (local-time.js), kept on one line.
    updated = page.locator("table time").first
    expect(updated).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    assert updated.evaluate("t => getComputedStyle(t).whiteSpace") == "nowrap"

    page.get_by_role("link", name="sales-pg", exact=True).click()
    expect(page.locator("#ca_pem")).to_have_value(private_postgres.ca_pem or "")
    expect(page.locator("#secret-hint")).to_contain_text("Leave it empty")
    assert_accessible(page)
    before = api_calls.count()
    page.click("#test")  # the secret left empty: the gateway tests the stored one
    expect(page.locator("#result")).to_contain_text("Tested with the stored secret.")
    expect(page.locator("#result")).to_contain_text(SUMMARIES["ok"])  # an admin sees more
    stored_test = ("POST", f"{live_server.url}/api/v1/credentials/sales-pg/test")
    assert api_calls.seen[before:] == [stored_test]
    assert live_server.bodies[-1] == b""  # no body: nothing sealed, nothing sent

    page.click("#save")  # nothing changed and no secret: nothing to send
    expect(page.locator("#result")).to_contain_text("Nothing changed")
    assert api_calls.count() == before + 1

    page.fill("#server", f"{private_postgres.host}:1")
    expect(page.locator("#secret-needed")).to_contain_text("enter the secret again")
    page.click("#test")
    expect_field_error(page, "secret", "enter the secret again")
    expect(page.locator("#secret-needed")).to_be_hidden()  # said once, as the error
    expect(page.locator("#result")).to_be_empty()  # "Nothing changed" no longer applies
    page.click("#save")
    expect_field_error(page, "secret", "enter the secret again")
    assert api_calls.count() == before + 1  # the browser refused both: nothing sent
    assert_accessible(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "credential-form-new-server.png"), full_page=True)

    # Put the server back; a new user name needs the secret too (it is sealed with it).
    page.fill("#server", f"{private_postgres.host}:{private_postgres.port}")
    expect(page.locator("#secret-needed")).to_be_hidden()
    page.fill("#username", "someone_else")
    expect(page.locator("#secret-needed")).to_contain_text("user name")
    page.fill("#username", private_postgres.user)
    page.fill("#secret", private_postgres.password)
    page.click("#save")
    page.wait_for_url(f"{live_server.url}/credentials")
    expect(page.locator(".flash")).to_have_text("Saved credential sales-pg (version 2).")


def test_the_gateways_refusal_shows_beside_the_field_it_names(
    page: Page, live_server: LiveServer, private_postgres: ServiceLogin
) -> None:
    sign_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/credentials/new")
    expect(page.locator("#thumbprint")).not_to_have_text("(loading…)")
    fill_form(page, "bad-port", private_postgres, "whatever")
    page.fill("#server", "db.example:99999")  # only the gateway knows ports end at 65535
    page.click("#test")
    expect_field_error(page, "server", "port must be a number from 1 to 65535")
    expect(page.locator("#result")).to_have_text("Not tested: see Server.")
    expect(page.locator("#server")).to_be_focused()
    assert_accessible(page)
    page.fill("#server", "db.example:5432")  # typing clears the field's error
    expect(page.locator("#server-error")).to_be_hidden()
    expect(page.locator("#server")).not_to_have_attribute("aria-invalid", "true")


def test_an_invalid_name_is_stopped_by_the_browser_before_any_request(
    page: Page, live_server: LiveServer, private_postgres: ServiceLogin, api_calls: ApiCalls
) -> None:
    sign_in(page, live_server, "cleo")
    page.goto(f"{live_server.url}/credentials/new")
    expect(page.locator("#thumbprint")).not_to_have_text("(loading…)")
    fill_form(page, "no spaces/or slashes", private_postgres, "secret")
    page.click("#save")
    expect_field_error(page, "name", re.compile(r"\S"))  # the browser's own words
    assert page.locator("#name").evaluate("i => i.validity.patternMismatch")
    page.click("#test")
    assert api_calls.seen == []
    assert_accessible(page)
    page.fill("#name", "")
    page.click("#test")
    assert page.locator("#name").evaluate("i => i.validity.valueMissing")
    assert api_calls.seen == []


def test_a_sqlite_form_asks_for_a_file_path_and_no_login(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    database = tmp_path / "sales.db"
    with sqlite3.connect(database) as made:
        made.execute("CREATE TABLE t (x)")
    with live_server.web_vault.gateway() as gateway:
        allow_sqlite_dir(gateway, str(tmp_path))  # even an admin's SQLite tests need one
    sign_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/credentials/new")
    expect(page.locator("#thumbprint")).not_to_have_text("(loading…)")
    page.fill("#name", "sales-file")
    page.select_option("#type", "sqlite")
    expect(page.locator("#server-label")).to_have_text("Database file path")
    for hidden in ("#database", "#tls", "#ca_pem", "#username", "#secret"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("#auth")).to_have_value("anonymous")
    assert_accessible(page)
    page.fill("#server", "relative/path.db")
    page.click("#test")
    assert page.locator("#server").evaluate("i => i.validity.patternMismatch")
    expect(page.locator("#server-error")).to_be_visible()
    page.fill("#server", str(database))
    page.click("#test")
    expect(page.locator("#result")).to_contain_text(SUMMARIES["ok"])
    page.click("#save")
    page.wait_for_url(f"{live_server.url}/credentials")
    expect(page.locator(".flash")).to_have_text("Saved credential sales-file (version 1).")
    # Back on the stored one: postgresql again shows the login fields.
    page.goto(f"{live_server.url}/credentials/sales-file")
    expect(page.locator("#server")).to_have_value(str(database))
    page.select_option("#type", "postgresql")
    expect(page.locator("#username")).to_be_visible()
    expect(page.locator("#secret")).to_be_visible()
    expect(page.locator("#auth")).to_have_value("basic")


def test_a_creator_sees_anothers_credential_read_only_and_an_auditor_too(
    page: Page, live_server: LiveServer, private_postgres: ServiceLogin
) -> None:
    sign_in(page, live_server, "ada")
    store_with_the_form(page, live_server, "ada-pg", private_postgres)
    page.context.clear_cookies()
    for viewer, note in (("cleo", "Only its owner (user:ada) or an admin"), ("otto", "auditor")):
        sign_in(page, live_server, viewer)
        page.goto(f"{live_server.url}/credentials/ada-pg")
        expect(page.locator("#read-only")).to_contain_text(note)
        expect(page.locator("main")).to_contain_text(private_postgres.user)
        expect(page.locator("#credential-form")).to_have_count(0)
        assert page.locator("main input, main select, main textarea, main button").count() == 0
        expect(page.get_by_text("Delete ada-pg")).to_have_count(0)
        assert_accessible(page)
        page.screenshot(path=str(ARTIFACTS / f"credential-read-only-{viewer}.png"), full_page=True)
        page.context.clear_cookies()


def test_delete_asks_names_the_credential_and_it_is_restored_from_deleted(
    page: Page, live_server: LiveServer, private_postgres: ServiceLogin
) -> None:
    sign_in(page, live_server, "cleo")
    store_with_the_form(page, live_server, "old-pg", private_postgres)
    page.goto(f"{live_server.url}/credentials/old-pg")
    page.click("text=Delete old-pg…")
    expect(page.locator("h1")).to_have_text("Delete old-pg")
    expect(page.locator("main")).to_contain_text("Delete the credential old-pg?")
    expect(page.locator("main")).to_contain_text("kept for 30 days")
    assert_accessible(page)
    page.click("text=Cancel")  # Cancel changes nothing
    expect(page.locator("h1")).to_have_text("old-pg")
    page.click("text=Delete old-pg…")
    page.click("button.destructive")
    page.wait_for_url(f"{live_server.url}/credentials")
    expect(page.locator(".flash")).to_have_text(
        "Deleted credential old-pg; it can be restored from Deleted credentials until it is purged."
    )
    expect(page.locator("main")).not_to_contain_text("old-pg (")
    # Found under Deleted, with when it goes for good, and restored from there.
    page.click("#deleted-link")
    expect(page.locator("h1")).to_have_text("Deleted credentials")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr td").first).to_have_text("old-pg")
    assert_accessible(page)
    page.get_by_role("button", name="Restore old-pg").click()
    page.wait_for_url(f"{live_server.url}/credentials")
    expect(page.locator(".flash")).to_have_text("Restored credential old-pg.")
    expect(page.get_by_role("link", name="old-pg")).to_be_visible()
    with live_server.web_vault.gateway() as gateway:
        (restored,) = CredentialService(gateway).list()
        assert (restored.name, restored.state, restored.binding.version) == ("old-pg", "active", 1)


@pytest.mark.parametrize("size", [70_000, 10_000_000])
def test_an_oversized_secret_is_refused_in_the_page_with_the_limit(
    page: Page, live_server: LiveServer, private_postgres: ServiceLogin, api_calls: ApiCalls,
    size: int,
) -> None:  # fmt: skip
    sign_in(page, live_server, "cleo")
    page.goto(f"{live_server.url}/credentials/new")
    expect(page.locator("#thumbprint")).not_to_have_text("(loading…)")
    fill_form(page, "big-secret", private_postgres, "")
    page.locator("#secret").evaluate(
        "(input, size) => { input.value = 'x'.repeat(size);"
        " input.dispatchEvent(new Event('input', { bubbles: true })); }",
        size,
    )
    page.click("#save")
    expect_field_error(
        page, "secret", f"The secret is {size:,} bytes; a secret is at most 8,192 bytes."
    )
    page.click("#test")
    expect(page.locator("#secret-error")).to_be_visible()
    assert api_calls.seen == []
    expect(page.locator("#secret-hint")).to_have_text("At most 8192 bytes (UTF-8).")
    assert_accessible(page)


def test_a_10_mb_body_sent_past_the_page_gets_a_clear_answer_in_the_browser(
    page: Page, live_server: LiveServer
) -> None:
    # A script that skips the page's checks: the endpoint refuses the declared
    # length before reading, and Chromium still reads the JSON answer.
    sign_in(page, live_server, "cleo")
    page.goto(f"{live_server.url}/credentials/new")
    answer = page.evaluate(
        """async (size) => {
          const csrf = document.querySelector('meta[name="csrf-token"]').content;
          const body = JSON.stringify({ type: "postgresql", server: "db:5432",
                                        encrypted_credential: "x".repeat(size) });
          const response = await fetch("/api/v1/credentials/huge", { method: "PUT", body,
            headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf } });
          return [response.status, await response.json()];
        }""",
        10_000_000,
    )
    assert answer == [
        413,
        {"error": {"code": "body_too_large", "message": "the body is over 65536 bytes"}},
    ]


# (type, server, tls): both sides of the cleartext rule, as the CLI decides them.
CLEARTEXT_CASES = [
    ("http", "http://10.0.0.5/api", "verify-full"),
    ("http", "http://127.0.0.1:8080/", "verify-full"),
    ("http", "http://localhost/", "verify-full"),
    ("http", "http://[::1]:8080/", "verify-full"),
    ("http", "https://api.example.com/", "verify-full"),
    ("postgresql", "db.example.com:5432", "disable"),
    ("postgresql", "db.example.com:5432", "verify-full"),
    ("postgresql", "127.0.0.1:5432", "disable"),
    ("mysql", "[::1]:3306", "disable"),
    ("mysql", "[2001:db8::1]:3306", "disable"),
]


def test_the_form_warns_of_cleartext_exactly_where_the_cli_refuses(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/credentials/new")
    warning = page.locator("#cleartext-warning")
    for kind, server, tls in CLEARTEXT_CASES:
        page.select_option("#type", kind)
        if kind != "http":
            page.select_option("#tls", tls)
        page.fill("#server", server)
        source = DataSource(parse_data_source_type(kind), server, None, tls=parse_tls_mode(tls))
        if cleartext_warning(source) is None:
            expect(warning, f"{kind} {server} {tls}").to_be_hidden()
        else:
            expect(warning, f"{kind} {server} {tls}").to_contain_text("in clear")
    assert_accessible(page)
