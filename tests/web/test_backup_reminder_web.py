"""The backup reminder on the overview page and in GET /api/v1/status (issue 19)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from agent_keys.secret import Secret
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.keys.certificates import CertificateService
from vault.keys.relocation import export_bundle

pytestmark = pytest.mark.contract


def test_the_overview_and_the_api_remind_until_a_bundle_and_after_a_rotation(
    client: FlaskClient, web_vault: WebVault, recovery_key: Secret
) -> None:
    sign_in(client, "otto")

    def shown() -> tuple[str, dict[str, object]]:
        html = client.get("/", base_url=BASE_URL).get_data(as_text=True)
        backup = client.get("/api/v1/status", base_url=BASE_URL).get_json()["backup"]
        return html, backup

    html, backup = shown()
    assert 'id="backup-reminder"' in html and "gwvault recovery export --out FILE" in html
    assert backup["needed"] is True and backup["last_backup"] is None

    with web_vault.gateway() as gateway:
        export_bundle(gateway, recovery_key)
    html, backup = shown()
    assert 'id="backup-reminder"' not in html and "recovery.exported at" in html
    assert backup["needed"] is False and backup["reminder"] is None

    with web_vault.gateway() as gateway:
        CertificateService(gateway).rotate()
    html, backup = shown()
    assert 'id="backup-reminder"' in html and "cert.rotated" in html
    assert backup["needed"] is True
