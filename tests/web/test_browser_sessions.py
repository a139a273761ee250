"""Two gateways on one host, signed in from one real Chromium: each keeps its own session.

Cookies are not isolated by port (RFC 6265 section 8.5): with one cookie name
for every gateway, signing in to the second replaced the first's session
cookie, and the first signed its user out (T-WEB-14).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web.test_browser_entry import sign_in
from tests.web_fixtures import LiveServer, WebVault, served
from web.access import SESSION_COOKIE_PREFIX


def _signed_in_as(page: Page, server: LiveServer, who: str) -> None:
    page.goto(f"{server.url}/")
    expect(page.locator("h1")).to_have_text("gw-test")  # the overview, not the sign-in page
    expect(page.locator("form.signout span")).to_have_text(who)


def test_two_gateways_on_two_ports_keep_their_sessions_apart(
    page: Page,
    live_server: LiveServer,
    copy_web_vault: Callable[[Path], WebVault],
    tmp_path: Path,
) -> None:
    second_vault = copy_web_vault(tmp_path / "second")
    with served(second_vault) as second:
        sign_in(page, live_server, "ada")
        sign_in(page, second, "otto")
        for _ in range(2):  # back and forth: neither sign-in displaced the other
            _signed_in_as(page, live_server, "ada (admin)")
            _signed_in_as(page, second, "otto (auditor)")
        names = sorted(c["name"] for c in page.context.cookies() if c["domain"] == "127.0.0.1")
        assert names == sorted(
            f"{SESSION_COOKIE_PREFIX}{port}" for port in (live_server.port, second.port)
        )
        # Signing out of one ends that session only.
        page.goto(f"{second.url}/")
        page.click("form.signout button")
        expect(page.locator("h1")).to_have_text("Sign in")
        _signed_in_as(page, live_server, "ada (admin)")
