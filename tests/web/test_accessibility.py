"""Every page, as each role that may see it sees it, passes axe-core's WCAG A/AA
check with no serious or critical violation (tests/accessibility.py), in real
Chromium.  Pages in a particular state (a refused form, a new token, a closed
link, the entry page) are checked in the tests of their flows."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page

from tests.accessibility import assert_accessible
from tests.web.api_helpers import store_as_ada
from tests.web.test_browser_entry import sign_in
from tests.web_fixtures import LiveServer
from vault.credentials import CredentialService

STORED = "sales-db"
EVERYONE = ["/", "/credentials", f"/credentials/{STORED}", "/account/password"]
PAGES = {
    "ada": [
        *EVERYONE,
        "/credentials/new",
        f"/credentials/{STORED}/delete",
        "/users",
        "/users/cleo/edit",
        "/users/cleo/remove",
        "/tokens",
        "/entry-links",
        "/audit",
        "/due",
    ],
    "cleo": [*EVERYONE, "/credentials/new"],
    "otto": [*EVERYONE, "/audit"],
}
CASES = [(user, path) for user, paths in PAGES.items() for path in paths]


def test_sign_in_page_is_accessible(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/signin")
    assert_accessible(page)


@pytest.mark.parametrize(("user", "path"), CASES, ids=[f"{u}:{p}" for u, p in CASES])
def test_each_page_is_accessible(
    page: Page, live_server: LiveServer, app: Flask, user: str, path: str
) -> None:
    # A credential of ada's, so its page, read-only view and delete page exist.
    store_as_ada(app, live_server.web_vault, STORED)
    sign_in(page, live_server, user)
    response = page.goto(f"{live_server.url}{path}")
    assert response is not None and response.status == 200, path
    assert_accessible(page)


def test_the_pages_of_a_credentials_life_are_accessible(
    page: Page, live_server: LiveServer, app: Flask
) -> None:
    # One disabled, one deleted: the list's badge, the Deleted view's Restore and
    # Purge, the purge question, a deleted credential's own page.
    for name in (STORED, "old-db"):
        store_as_ada(app, live_server.web_vault, name)
    with live_server.web_vault.gateway() as gateway:
        CredentialService(gateway).disable(STORED)
        CredentialService(gateway).delete("old-db")
    sign_in(page, live_server, "ada")
    for path in ("/credentials", f"/credentials/{STORED}", "/credentials?deleted=true",
                 "/credentials/old-db", "/credentials/old-db/purge"):  # fmt: skip
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        assert_accessible(page)


def test_the_check_fails_on_an_unlabelled_field(page: Page) -> None:
    # The check itself can fail: a form field with no label is a critical violation.
    page.set_content("<!doctype html><html lang=en><title>t</title><main><input></main></html>")
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(page)
