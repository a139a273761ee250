"""``gwvault serve`` on a PKCS#11 vault: the HSM unlocks once, in the parent; the workers
are forks; a key rotation made meanwhile from the CLI is used by the next request."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import ssl
import subprocess
from pathlib import Path

from tests.conftest import RECOVERY_KEY
from tests.service_fixtures import free_tcp_port
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
from tests.vault.cli.gwvault_process import GWVAULT, GwvaultCli, private_file

CLIENT_TLS = ssl.create_default_context()
CLIENT_TLS.check_hostname = False
CLIENT_TLS.verify_mode = ssl.CERT_NONE


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
    port = free_tcp_port()
    server = subprocess.Popen(
        [str(GWVAULT), "--data-dir", str(cli.data_dir), "--pin-file", str(pin_file), "serve",
         "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SOFTHSM2_CONF": str(softhsm.conf)},
    )  # fmt: skip
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("serving https://")
        assert connection_test(port, token, "sales")["reason"] != "integrity"
        rotated = cli("--pin-file", pin_file, "keys", "rotate", "--recovery-key-file", recovery)
        assert rotated.code == 0, rotated.err
        for _ in range(4):  # both workers, whichever takes each connection
            assert "reason" in connection_test(port, token, "sales")
    finally:
        server.terminate()
        server.wait(timeout=20)


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
