"""Entry links in real Chromium: an admin makes one on the page, copies it to the
clipboard and revokes it; the person it was sent to sees who asked, for what,
until when and that it works once, saves, and the link is then used up.  Every
page state passes axe-core's check."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.accessibility import assert_accessible
from tests.web.api_helpers import UNREACHABLE_PG
from tests.web.test_browser_entry import sign_in
from tests.web_fixtures import LiveServer
from vault.access.grants import AccessGrants
from vault.context import RequestContext
from vault.format.data_source import DataSource
from vault.gateway import Gateway

UTC_TITLE = re.compile(r" UTC$")  # local-time.js: local time shown, UTC on hover


@pytest.fixture
def clipboard_page(chromium: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A page whose scripts may write and read the clipboard (as a person's browser
    lets a site do after a click)."""
    context = chromium.new_context(ignore_https_errors=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_an_admin_creates_copies_and_revokes_an_entry_link(
    clipboard_page: Page, live_server: LiveServer
) -> None:
    page = clipboard_page
    sign_in(page, live_server, "ada")
    page.get_by_role("link", name="Entry links").click()
    expect(page.locator("h1")).to_have_text("Entry links")
    expect(page.locator("main")).to_contain_text("No open entry links")
    assert_accessible(page)

    page.get_by_label("Data source name").fill("hr-pg")
    page.locator("select[name=type]").select_option("postgresql")
    page.get_by_label("Server", exact=True).fill("db.example:5432")
    page.get_by_label("Database").fill("hr")
    page.get_by_label("Expires in (minutes)").fill("30")
    page.get_by_role("button", name="Create link").click()

    expect(page.locator("#created-title")).to_have_text("Entry link for hr-pg")
    link = page.locator("#created-url").input_value()
    assert link.startswith(f"{live_server.url}/entry/")
    assert_accessible(page)
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#copy-result")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == link

    row = page.locator("table.entry-links tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("hr-pg")
    expect(row).to_contain_text("db.example:5432")
    expect(row.locator("td").nth(2)).to_have_text("ada")
    expect(row.locator("time").first).to_have_attribute("title", UTC_TITLE)
    assert link.rsplit("/", 1)[1] not in row.inner_html()

    row.get_by_role("link", name="Revoke the link for hr-pg").click()
    expect(page.locator("h1")).to_have_text("Revoke the entry link for hr-pg")
    expect(page.locator(".question")).to_contain_text("hr-pg (postgresql at db.example:5432)")
    assert_accessible(page)
    page.get_by_role("button", name="Revoke link").click()
    expect(page.locator(".flash")).to_have_text("Revoked the entry link for hr-pg.")
    expect(page.locator("main")).to_contain_text("No open entry links")
    assert_accessible(page)

    page.goto(link)
    expect(page.locator("h1")).to_have_text("This entry link was revoked")
    expect(page.locator("main")).to_contain_text("ask ada for a new link")
    assert_accessible(page)


def test_the_entry_page_says_who_what_until_once_and_then_is_used_up(
    page: Page, live_server: LiveServer
) -> None:
    web_vault = live_server.web_vault
    target = DataSource("postgresql", UNREACHABLE_PG, "hr")
    context = RequestContext(actor="user:ada", channel="web")
    with Gateway.open(web_vault.data_dir, context, unlocked=web_vault.handle.master_key) as gw:
        secret, link = AccessGrants(gw).create_entry_link(
            "hr-pg", target, datetime.timedelta(minutes=20)
        )
    url = f"{live_server.url}/entry/{secret}"

    page.goto(url)
    info = page.locator(".entry-info")
    expect(info).to_contain_text("ada asked you to enter the password for the data source hr-pg")
    expect(info).to_contain_text(f"postgresql at {UNREACHABLE_PG}, database hr")
    expect(info).to_contain_text("This link works once: saving uses it up.")
    until = info.locator("time")
    expect(until).to_have_attribute("datetime", link.expires_at.isoformat())
    expect(until).to_have_attribute("title", UTC_TITLE)
    expect(page.locator("#entry-finished")).to_be_hidden()
    assert_accessible(page)

    page.select_option("#auth", "basic")
    page.fill("#username", "alice")
    page.fill("#secret", "alice's pa55word")
    page.click("#save")

    finished = page.locator("#entry-finished")
    expect(finished).to_be_visible()
    expect(finished).to_have_text("Saved. This link is now used up; you can close this page.")
    expect(finished).to_be_focused()
    for control in ("#save", "#test", "#secret", "#username", "#auth"):
        expect(page.locator(control)).to_be_disabled()
    expect(page.locator("#secret")).to_have_value("")
    assert_accessible(page)

    answer = page.goto(url)
    assert answer is not None and answer.status == 410
    expect(page.locator("h1")).to_have_text("This entry link has been used")
    expect(page.locator("main")).to_contain_text("The credential for hr-pg was saved with it")
    assert_accessible(page)


def test_an_unknown_link_opens_a_clear_page(page: Page, live_server: LiveServer) -> None:
    answer = page.goto(f"{live_server.url}/entry/{'A' * 43}")
    assert answer is not None and answer.status == 404
    expect(page.locator("h1")).to_have_text("This entry link is not recognised")
    assert_accessible(page)
