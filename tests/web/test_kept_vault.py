"""The endpoint keeps the vault open across requests (web.access.VaultHandle) and
still serves every change another process makes, from the next request on."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import RECOVERY_KEY
from tests.vault.cli.gwvault_process import GwvaultCli, private_file
from tests.web.api_helpers import API, bearer, new_token, put_credential, sealed_body
from tests.web_fixtures import BASE_URL, WebVault
from web.access import gateway


def _thumbprint(client: FlaskClient, token: str) -> str:
    response = client.get(f"{API}/certificate.json", headers=bearer(token), base_url=BASE_URL)
    assert response.status_code == 200, response.get_data(as_text=True)
    thumbprint: str = response.get_json()["thumbprint"]
    return thumbprint


def test_requests_share_one_connection_and_leave_it_open(
    web_vault: WebVault, client: FlaskClient
) -> None:
    token = new_token(web_vault, "admin")
    first = _thumbprint(client, token)
    # Closing the last connection after each request would checkpoint and
    # delete the log, which the next request made again.
    assert (web_vault.data_dir / "vault.db-wal").exists()
    assert _thumbprint(client, token) == first


def test_a_certificate_rotated_by_the_gwvault_command_is_served_on_the_next_request(
    web_vault: WebVault, client: FlaskClient, tmp_path: Path
) -> None:
    token = new_token(web_vault, "admin")
    before = _thumbprint(client, token)
    cli = GwvaultCli(web_vault.data_dir)
    assert cli("cert", "rotate").code == 0
    after = _thumbprint(client, token)
    rotated = cli("cert", "show", "--json").json()
    assert after == rotated["thumbprint"] != before
    key_file = private_file(tmp_path / "recovery", RECOVERY_KEY)
    assert cli("keys", "rotate", "--recovery-key-file", key_file).code == 0
    assert _thumbprint(client, token) == after
    assert cli("audit", "verify").code == 0


def test_a_request_that_failed_mid_write_leaves_no_transaction_open(
    web_vault: WebVault, app: Flask
) -> None:
    token = new_token(web_vault, "admin")

    @app.get("/test/fail-mid-write")
    def fail_mid_write() -> str:
        gateway().store.execute("BEGIN IMMEDIATE", [])
        gateway().store.set_setting("name", "half-written")
        raise RuntimeError("the request failed between its change and the commit")

    client = app.test_client()
    assert client.get("/test/fail-mid-write", base_url=BASE_URL).status_code == 500
    with web_vault.gateway() as other:
        assert other.name == "gw-test"
        with other.store.write():  # not held locked by the failed request
            other.store.set_setting("probe", "1")
    response = client.get(f"{API}/status", headers=bearer(token), base_url=BASE_URL)
    assert response.status_code == 200 and response.get_json()["name"] == "gw-test"


def test_after_a_master_key_rotation_by_the_command_the_server_stores_under_the_new_key(
    web_vault: WebVault, client: FlaskClient, tmp_path: Path
) -> None:
    token = new_token(web_vault, "admin")
    _thumbprint(client, token)  # the thread's vault is open, with the GMK unlocked at start
    cli = GwvaultCli(web_vault.data_dir)
    key_file = private_file(tmp_path / "recovery", RECOVERY_KEY)
    assert cli("keys", "rotate", "--recovery-key-file", key_file).code == 0
    body = sealed_body(web_vault, "sales")
    response = put_credential(client, "sales", body, bearer(token))
    assert response.status_code == 201, response.get_data(as_text=True)
    with web_vault.gateway() as gateway:
        assert gateway.store.credential("sales").sealed.gmk_version == 2  # type: ignore[union-attr]
    assert cli("credentials", "verify").code == 0
    status = client.get(f"{API}/status", headers=bearer(token), base_url=BASE_URL).get_json()
    assert status["master_key_version"] == 2 and status["cert_checked"] is True
