"""A person at the page, in real Chromium: sign in, enter a PostgreSQL credential,
test it against a real server, save it, see it listed; the secret never crosses
the wire in clear.

The form's screenshot is kept at test-artifacts/credential-form.png (the README
shows a copy, docs/credential-form.png).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from jwcrypto import jwe, jwk
from playwright.sync_api import Page, expect

from tests.service_fixtures import ServiceLogin
from tests.web_fixtures import PASSWORDS, LiveServer
from vault.access.destination_policy import allow_network
from vault.access.grants import AccessGrants
from vault.connectors.connection import SUMMARIES
from vault.connectors.destinations import AllowedNetwork
from vault.format.data_source import DataSource

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def sign_in(page: Page, server: LiveServer, name: str) -> None:
    page.goto(f"{server.url}/signin")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("gw-test")


def fill_form(page: Page, name: str | None, pg: ServiceLogin, password: str) -> None:
    if name is not None:  # None: the name is fixed by the page (an entry link)
        page.fill("#name", name)
    page.select_option("#type", "postgresql")
    page.fill("#server", f"{pg.host}:{pg.port}")
    page.fill("#database", pg.database)
    page.select_option("#tls", "verify-full")
    page.fill("#ca_pem", pg.ca_pem or "")
    page.select_option("#auth", "basic")
    page.fill("#username", pg.user)
    page.fill("#secret", password)


def test_enter_test_and_save_a_postgresql_credential(
    page: Page, live_server: LiveServer, private_postgres: ServiceLogin
) -> None:
    with live_server.web_vault.gateway() as gateway:
        # The test server is on loopback, which a creator's test may not reach
        # unless an admin allows it (threat T-CN-2).
        allow_network(gateway, AllowedNetwork.parse("127.0.0.1/32", private_postgres.port))
    sign_in(page, live_server, "cleo")
    page.goto(f"{live_server.url}/credentials/new")
    expect(page.locator("#thumbprint")).not_to_have_text("(loading…)")
    with live_server.web_vault.gateway() as gateway:
        thumbprint = gateway.certificate().thumbprint
        private_key = next(iter(gateway.private_keys.values()))
    expect(page.locator("#thumbprint")).to_have_text(thumbprint)

    fill_form(page, "sales-pg", private_postgres, "not-the-password")
    page.click("#test")
    # A creator gets the fixed sentence, never the server's own words (T-CN-3).
    expect(page.locator("#result")).to_have_text(SUMMARIES["auth_failed"])
    expect(page.locator("#result")).not_to_contain_text("not-the-password")

    page.fill("#secret", private_postgres.password)
    page.click("#test")
    expect(page.locator("#result")).to_have_text(SUMMARIES["ok"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "credential-form.png"), full_page=True)

    page.click("#save")
    page.wait_for_url(f"{live_server.url}/credentials")
    expect(page.locator("table")).to_contain_text("sales-pg")
    expect(page.locator("table")).to_contain_text(private_postgres.user)

    # What crossed the wire: never the password, in any request body.
    everything = b"".join(live_server.bodies)
    for secret in (private_postgres.password, "not-the-password"):
        assert secret.encode() not in everything
    sealed = [
        json.loads(b)["encrypted_credential"] for b in live_server.bodies if b.startswith(b"{")
    ]
    assert len(sealed) == 3  # two tests and the save

    # The independent JOSE library opens what the page sealed.
    der = private_key.to_pkcs8().reveal()
    pem = serialization.load_der_private_key(der, None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    opened = jwe.JWE()
    opened.deserialize(sealed[-1], key=jwk.JWK.from_pem(pem))
    assert json.loads(opened.payload)["secret"] == private_postgres.password

    with live_server.web_vault.gateway() as gateway:
        events = [(e.action, e.actor, e.channel) for e in gateway.store.audit_events()]
    assert ("credential.created", "user:cleo", "web") in events
    assert ("credential.tested", "user:cleo", "web") in events


def test_an_entry_link_enters_one_credential_once(
    page: Page, live_server: LiveServer, private_postgres: ServiceLogin
) -> None:
    with live_server.web_vault.gateway() as gateway:
        target = DataSource(
            "postgresql",
            f"{private_postgres.host}:{private_postgres.port}",
            private_postgres.database,
        )
        secret, _ = AccessGrants(gateway).create_entry_link(
            "hr-pg", target, datetime.timedelta(minutes=15)
        )
    page.goto(f"{live_server.url}/entry/{secret}")
    expect(page.locator("#name")).to_have_value("hr-pg")
    # The link fixed the target: the page shows it and does not let it change.
    expect(page.locator("#server")).to_have_value(target.server)
    expect(page.locator("#server")).to_have_attribute("readonly", "")
    page.select_option("#auth", "basic")
    page.fill("#username", private_postgres.user)
    page.fill("#secret", private_postgres.password)
    page.click("#save")
    expect(page.locator("#result")).to_contain_text("Saved hr-pg")
    page.goto(f"{live_server.url}/entry/{secret}")
    expect(page.locator("h1")).to_have_text("This entry link has been used")
