"""A canary secret put through every path of the vault is found nowhere it should not be.

Where it may be: inside authenticated ciphertext only.  Where it must not be:
command output, error lines, audit entries and exports, reprs, the running
server's log and process arguments, HTTP response bodies (successes and
errors), and every file in the data dir (database, WAL, key file), in clear or
in any common encoding.  The page's own requests are checked in a real browser
by tests/web/test_browser_entry.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import signal
import ssl
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import CANARY, RECOVERY_KEY, make_context
from tests.service_fixtures import HttpAuthServer, ServiceLogin, free_tcp_port
from tests.vault.cli.gwvault_process import GWVAULT, GwvaultCli, private_file
from vault.credentials import CredentialService
from vault.gateway import Gateway


def encodings(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [
        raw,
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
        raw.hex().encode(),
        secret.encode("utf-16-le"),
        raw[4:-4],  # a middle slice survives any prefix or padding
    ]


def assert_absent(haystack: bytes, where: str) -> None:
    for form in encodings(CANARY):
        assert form not in haystack, f"canary ({form[:12]!r}...) found in {where}"


def test_the_canary_leaks_nowhere(
    vault_templates: dict[str, Path],
    tmp_path: Path,
    private_postgres: ServiceLogin,
    https_auth_server: HttpAuthServer,
) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    cli = GwvaultCli(tmp_path / "data")
    cert = tmp_path / "gw.pem"
    cli("cert", "export", "--public", "--out", cert)
    secret_file = private_file(tmp_path / "canary.txt", CANARY + "\n")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(private_postgres.ca_pem or "")  # the same test CA signs both servers
    pg = f"{private_postgres.host}:{private_postgres.port}"
    token = cli("encrypt-value", "--cert", cert, "--datasource", "sealed", "--type", "mysql",
                "--server", "127.0.0.1:1", "--username", "u", stdin=CANARY).out.strip()  # fmt: skip
    assert_absent(token.encode(), "the EncryptedCredential")
    steps: list[tuple[list[str], str]] = [
        (["credentials", "put", "from-file", "--type", "postgresql", "--server", pg, "--database",
          private_postgres.database, "--username", "u", "--secret-file", str(secret_file),
          "--tls", "require"], ""),
        (["credentials", "put", "from-pipe", "--type", "http", "--server",
          f"{https_auth_server.base_url}/basic", "--username", "u", "--tls-ca", str(ca_file)],
         CANARY),
        (["credentials", "put", "sealed", "--type", "mysql", "--server", "127.0.0.1:1",
          "--encrypted-credential", token], ""),
        (["credentials", "put", "from-pipe", "--type", "http", "--server",
          f"{https_auth_server.base_url}/basic", "--username", "u", "--tls-ca", str(ca_file)],
         CANARY + "-v2"),
        (["credentials", "list"], ""), (["credentials", "list", "--json"], ""),
        (["credentials", "show", "from-file", "--json"], ""),
        (["credentials", "test", "from-file"], ""),  # wrong password: the driver's error
        (["credentials", "test", "from-pipe"], ""),  # HTTP 401
        (["credentials", "test", "sealed"], ""),  # nobody listens on port 1
        (["credentials", "verify"], ""),
        (["credentials", "put", "sealed", "--type", "mysql", "--server", "db",
          "--encrypted-credential", token[:-5]], ""),  # tampered: refused
        (["status", "--json"], ""),
        (["credentials", "delete", "from-pipe"], ""),
    ]  # fmt: skip
    codes = [cli(*args, stdin=stdin).code for args, stdin in steps]
    assert codes == [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 2, 0, 0]
    assert_absent("\n".join(cli.outputs).encode(), "command output")

    with Gateway.open(cli.data_dir, make_context()) as gateway:
        service = CredentialService(gateway)
        resolved = service.use("from-file", "leak-test")
        assert resolved.secret is not None and resolved.secret.reveal_text() == CANARY
        shown = repr(resolved) + repr(service.list()) + repr(gateway.store.audit_events())
        assert_absent(shown.encode(), "reprs and audit entries")
    for path in sorted(cli.data_dir.iterdir()):
        assert_absent(path.read_bytes(), f"data dir file {path.name}")


def test_the_canary_survives_rotation_export_and_restore_only_as_ciphertext(
    vault_templates: dict[str, Path], tmp_path: Path
) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    cli = GwvaultCli(tmp_path / "data")
    key_file = private_file(tmp_path / "recovery.key", RECOVERY_KEY)
    assert cli.put_login("sales", CANARY).code == 0
    assert cli("keys", "rotate", "--recovery-key-file", key_file).code == 0
    bundle = tmp_path / "gateway.gwb"
    assert cli("recovery", "export", "--out", bundle, "--recovery-key-file", key_file).code == 0
    restored = GwvaultCli(tmp_path / "restored")
    run = restored("restore", "--bundle", bundle, "--recovery-key-file", key_file)
    assert run.code == 0 and "1 of 1 credentials open" in run.out
    assert_absent(bundle.read_bytes(), "the recovery bundle")
    assert_absent("\n".join(cli.outputs + restored.outputs).encode(), "command output")
    for directory in (cli.data_dir, restored.data_dir):
        for path in sorted(directory.iterdir()):
            assert_absent(path.read_bytes(), f"{directory.name}/{path.name}")
    with Gateway.open(restored.data_dir, make_context()) as gateway:
        secret = CredentialService(gateway).use("sales", "leak-test").secret
    assert secret is not None and secret.reveal_text() == CANARY  # it is there, sealed


def test_the_canary_leaks_nowhere_through_the_https_api(
    vault_templates: dict[str, Path],
    tmp_path: Path,
    https_auth_server: HttpAuthServer,
    trusted_ca_pem: str,
) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    cli = GwvaultCli(tmp_path / "data")
    token = cli("tokens", "create", "--name", "etl", "--role", "admin").out.splitlines()[-1]
    port = free_tcp_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [str(GWVAULT), "--data-dir", str(cli.data_dir), "serve", "--allow-root",
             "--port", str(port)],
            stdout=subprocess.PIPE, stderr=log_file,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            assert server.stdout.readline().startswith(b"serving https://")
            argv = Path(f"/proc/{server.pid}/cmdline").read_bytes()
            bodies = _drive_the_api(port, token, https_auth_server, trusted_ca_pem)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=15)
            assert server.stdout is not None
            log_file.write(server.stdout.read())
    export = tmp_path / "audit.jsonl"
    assert cli("audit", "export", "--out", export).code == 0
    assert_absent(argv, "the server's process arguments")
    assert_absent(log.read_bytes(), "the server's log")
    assert_absent(b"\n".join(bodies), "HTTP response bodies")
    assert_absent(export.read_bytes(), "the audit export")
    for path in sorted(cli.data_dir.iterdir()):
        assert_absent(path.read_bytes(), f"data dir file {path.name}")
    with Gateway.open(cli.data_dir, make_context()) as gateway:
        secret = CredentialService(gateway).use("web-http", "leak-test").secret
    assert secret is not None and secret.reveal_text() == CANARY  # it went in, sealed


def _drive_the_api(port: int, token: str, http_auth: HttpAuthServer, ca_pem: str) -> list[bytes]:
    """Seal, store, test, list, show and break things through the API; every body."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the endpoint's self-signed certificate
    bodies: list[bytes] = []

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request(method, f"/api/v1{path}", json.dumps(body) if body else None, headers)
        response = connection.getresponse()
        raw = response.read()
        connection.close()
        bodies.append(raw)
        return response.status, json.loads(raw) if raw.startswith((b"{", b"[")) else raw

    status, sealed = call(
        "POST",
        "/encrypt-value",
        {"datasource": "web-http", "type": "http", "server": f"{http_auth.base_url}/basic",
         "ca_pem": ca_pem, "username": "u", "secret": CANARY},
    )  # fmt: skip
    assert status == 200
    token_value = sealed["encrypted_credential"]
    put = {"type": "http", "server": f"{http_auth.base_url}/basic", "ca_pem": ca_pem}
    assert call("PUT", "/credentials/web-http", {**put, "encrypted_credential": token_value})[
        0
    ] in (
        200,
        201,
    )
    assert call("POST", "/credentials/web-http/test")[0] == 200  # HTTP 401 from the server
    segments = token_value.split(".")
    segments[3] = ("B" if segments[3][0] == "A" else "A") + segments[3][1:]  # the ciphertext
    tampered = {**put, "encrypted_credential": ".".join(segments)}
    assert call("PUT", "/credentials/web-http", tampered)[0] == 400
    wrong_name = {**put, "encrypted_credential": token_value}
    assert call("PUT", "/credentials/other-name", wrong_name)[0] == 400
    for path in ("/credentials", "/credentials/web-http", "/audit", "/audit/verify", "/status"):
        assert call("GET", path)[0] == 200
    return bodies
