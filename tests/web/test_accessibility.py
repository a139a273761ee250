"""Every page, as each role sees it, passes axe-core's WCAG A/AA check with no
serious or critical violation (tests/accessibility.py), in real Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.accessibility import assert_accessible
from tests.web.test_browser_entry import sign_in
from tests.web_fixtures import LiveServer

ADMIN_PAGES = ["/", "/credentials", "/credentials/new", "/users", "/audit"]


def test_sign_in_page_is_accessible(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/signin")
    assert_accessible(page)


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_are_accessible(page: Page, live_server: LiveServer, path: str) -> None:
    sign_in(page, live_server, "ada")
    page.goto(f"{live_server.url}{path}")
    assert_accessible(page)


def test_the_check_fails_on_an_unlabelled_field(page: Page) -> None:
    # The check itself can fail: a form field with no label is a critical violation.
    page.set_content("<!doctype html><html lang=en><title>t</title><main><input></main></html>")
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(page)
