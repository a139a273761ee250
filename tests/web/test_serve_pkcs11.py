"""``gwvault serve`` on a PKCS#11 vault: the HSM unlocks once, in the parent; the workers
are forks; a key rotation made meanwhile from the CLI is used by the next request."""

from __future__ import annotations

import http.client
import json
import secrets
import shutil
from pathlib import Path

from tests.conftest import RECOVERY_KEY
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
from tests.vault.cli.gwvault_process import GwvaultCli, private_file
from tests.web.served_process import CLIENT_TLS, gwvault_serve


def test_a_forked_worker_follows_a_rotation_made_while_it_serves(
    vault_templates: dict[str, Path], tmp_path: Path, softhsm: SoftHsm
) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    cli = GwvaultCli(tmp_path / "data", {"SOFTHSM2_CONF": str(softhsm.conf)})
    pin_file = private_file(tmp_path / "pin", softhsm.pin + "\n")
    recovery = private_file(tmp_path / "recovery", RECOVERY_KEY)
    assert cli.put_login("sales").code == 0
    moved = cli("--pin-file", pin_file, "keystore", "migrate", "--to", "pkcs11",
                "--key-label", f"serve-{secrets.token_hex(4)}", "--pkcs11-module",
                softhsm.module, "--token-label", MAIN_TOKEN)  # fmt: skip
    assert moved.code == 0, moved.err
    made = cli("--pin-file", pin_file, "tokens", "create", "--name", "ops", "--role", "admin")
    token = made.out.splitlines()[-1]
    with gwvault_serve(
        cli.data_dir, "--pin-file", str(pin_file), workers=2,
        env={"SOFTHSM2_CONF": str(softhsm.conf)},
    ) as (_server, port):  # fmt: skip
        assert connection_test(port, token, "sales")["reason"] != "integrity"
        rotated = cli("--pin-file", pin_file, "keys", "rotate", "--recovery-key-file", recovery)
        assert rotated.code == 0, rotated.err
        for _ in range(4):  # both workers, whichever takes each connection
            assert "reason" in connection_test(port, token, "sales")


def connection_test(port: int, token: str, name: str) -> dict[str, object]:
    """POST .../test: the stored secret must open (with the current GMK) before any connect."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=CLIENT_TLS)
    try:
        connection.request(  # no body: the stored credential is tested
            "POST", f"/api/v1/credentials/{name}/test",
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 200, body
    result: dict[str, object] = body
    return result
