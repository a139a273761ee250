"""The overview page shows both certificates' SHA-256 fingerprints as a browser and
openssl show them, and the gateway certificate's base64url JWE kid, labelled."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.accessibility import assert_accessible
from tests.web.test_browser_entry import sign_in
from tests.web_fixtures import LiveServer
from vault.keys.tls import TlsService


def openssl_sha256(pem: bytes, tmp_path: Path) -> str:
    path = tmp_path / "cert.pem"
    path.write_bytes(pem)
    done = subprocess.run(
        ["openssl", "x509", "-fingerprint", "-sha256", "-noout", "-in", str(path)],
        capture_output=True,
        check=True,
        text=True,
    )
    return done.stdout.strip().split("=", 1)[1]


@pytest.mark.parametrize("user", ["ada", "cleo", "otto"])
def test_the_overview_shows_hex_fingerprints_and_the_labelled_kid(
    page: Page, live_server: LiveServer, tmp_path: Path, user: str
) -> None:
    with live_server.web_vault.gateway() as gateway:
        certificate = gateway.certificate()
        tls_pem = TlsService(gateway).server_identity().chain_pem
    sign_in(page, live_server, user)
    facts = page.locator("dl.facts")
    gateway_hex = openssl_sha256(certificate.pem, tmp_path)
    tls_hex = openssl_sha256(
        tls_pem.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n", tmp_path
    )
    expect(
        facts.locator("dt", has_text="Certificate fingerprint (SHA-256)").locator("+ dd")
    ).to_have_text(gateway_hex)
    expect(facts.locator("dt", has_text="Certificate JWE kid").locator("+ dd")).to_have_text(
        certificate.thumbprint
    )
    expect(
        facts.locator("dt", has_text="HTTPS certificate fingerprint").locator("+ dd")
    ).to_have_text(tls_hex)
    assert_accessible(page)
