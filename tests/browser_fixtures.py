"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

One browser per session; every test gets a fresh context (no shared cookies,
storage or cache) and a page in it.  Where the browser is missing the tests
skip, or fail when ``GWVAULT_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.service_fixtures import require_service

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: the tests run as root in a container, where Chromium's sandbox
# cannot start.  The rest keeps a test run off the network and quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Headless Chromium, launched once per session and closed at the end."""
    if not CHROMIUM.exists():
        require_service(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A page in a fresh browser context; test servers use self-signed TLS."""
    context = chromium.new_context(ignore_https_errors=True)
    try:
        yield context.new_page()
    finally:
        context.close()
