"""Users, API tokens and passwords in real Chromium, as an admin and a user walk
them: the last admin is kept and the page says why, a refused form keeps what
was typed, a new token is shown once, and every page state passes axe-core."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from agent_keys.secret import Secret
from tests.accessibility import assert_accessible
from tests.web.test_browser_entry import sign_in
from tests.web_fixtures import PASSWORDS, LiveServer
from vault.access.accounts import Accounts

NEW_PASSWORD = "a fresh phrase of words 11"
WHY = "ada is the last admin; add another admin first"


def test_the_last_admin_cannot_remove_themself_and_the_page_says_why(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server, "ada")
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("cell", name="ada (you)")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Remove ada").click()  # says why, asks nothing
    expect(page.get_by_role("alert")).to_have_text(WHY)
    expect(page.get_by_role("button", name="Remove me and sign out")).to_have_count(0)
    assert_accessible(page)

    # A question asked while another admin existed, answered after they went.
    with live_server.web_vault.gateway() as gateway:
        Accounts(gateway).add_user("bea", "admin", Secret.from_text(PASSWORDS["ada"]))
    page.get_by_role("link", name="Remove ada").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove ada")
    expect(page.locator("main")).to_contain_text("This signs you out now")
    assert_accessible(page)
    with live_server.web_vault.gateway() as gateway:
        Accounts(gateway).remove_user("bea")
    page.get_by_role("button", name="Remove me and sign out").click()
    expect(page.get_by_role("alert")).to_have_text(WHY)
    expect(page.get_by_role("link", name="Users")).to_be_visible()  # still signed in


def test_a_weak_password_keeps_the_form_then_the_user_is_added(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/users")
    page.get_by_label("User name").fill("newbie")
    page.get_by_label("Role").select_option("auditor")
    page.get_by_label("Password", exact=True).fill("password1234")
    page.get_by_label("Password again").fill("password1234")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("alert")).to_contain_text("common passwords")
    expect(page.get_by_label("User name")).to_have_value("newbie")
    expect(page.get_by_label("Role")).to_have_value("auditor")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    assert_accessible(page)
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_have_text("Added user newbie.")
    expect(page.get_by_role("cell", name="newbie", exact=True)).to_be_visible()
    assert_accessible(page)


def test_a_token_is_shown_once_and_revoking_asks(page: Page, live_server: LiveServer) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, live_server, "ada")
    page.get_by_role("link", name="Tokens").click()
    expect(page.locator("main")).to_contain_text("No tokens yet.")
    assert_accessible(page)
    page.get_by_label("Name").fill("etl-nightly")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Token etl-nightly created")
    token = page.get_by_label("API token (creator)").input_value()
    assert token.startswith("gwv_")
    expect(page.locator("main")).to_contain_text("it will not be shown again")
    assert_accessible(page)
    page.get_by_role("button", name="Copy token").click()
    expect(page.get_by_role("status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == token
    assert page.url == f"{live_server.url}/tokens"  # the history entry is the list now
    assert token not in page.url

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")
    expect(page.get_by_role("cell", name="etl-nightly", exact=True)).to_be_visible()
    assert token not in page.content()

    page.get_by_role("link", name="Revoke etl-nightly").click()
    expect(page.locator("main")).to_contain_text("Revoke the API token etl-nightly?")
    assert_accessible(page)
    page.get_by_role("button", name="Revoke etl-nightly").click()
    expect(page.get_by_role("status")).to_have_text("Revoked API token etl-nightly.")
    expect(page.get_by_role("link", name="Revoke etl-nightly")).to_have_count(0)
    assert_accessible(page)


def test_you_change_your_own_password(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, "otto")
    expect(page.get_by_role("link", name="Users")).to_have_count(0)  # an auditor manages nobody
    page.get_by_role("link", name="Password").click()
    assert_accessible(page)
    page.get_by_label("Current password").fill("not my password at all")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("current password is not right")
    assert_accessible(page)
    page.get_by_label("Current password").fill(PASSWORDS["otto"])
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Changed your password")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("User name").fill("otto")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_have_text("gw-test")


def test_an_admin_sets_a_role_and_a_password_then_removes_themself(
    page: Page, live_server: LiveServer
) -> None:
    with live_server.web_vault.gateway() as gateway:
        Accounts(gateway).add_user("bea", "admin", Secret.from_text(PASSWORDS["ada"]))
    sign_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/users")
    page.get_by_role("link", name="Role or password of cleo").click()
    assert_accessible(page)
    page.get_by_label("Role").select_option("auditor")
    page.get_by_role("button", name="Change role").click()
    expect(page.get_by_role("status")).to_have_text("Changed the role of cleo to auditor.")
    page.get_by_role("link", name="Role or password of cleo").click()
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password again").fill("short")
    page.locator("form", has_text="New password").evaluate("f => f.noValidate = true")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 12 characters")
    assert_accessible(page)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status")).to_contain_text("Changed the password of cleo")

    page.get_by_role("link", name="Remove ada").click()
    page.get_by_role("button", name="Remove me and sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_role("status")).to_have_text(
        "Your account was removed and you are signed out."
    )
    assert_accessible(page)
    page.goto(f"{live_server.url}/users")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
