"""A canary secret put through every path of the vault core is found nowhere it should not be.

Where it may be: inside authenticated ciphertext only.  Where it must not be:
command output, error lines, audit entries, reprs, and every file in the data
dir (database, WAL, key file), in clear or in any common encoding.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

from tests.cli.gwvault_process import GwvaultCli, private_file
from tests.conftest import CANARY, RECOVERY_KEY, make_context
from tests.service_fixtures import HttpAuthServer, ServiceLogin
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
    http_auth_server: HttpAuthServer,
) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    cli = GwvaultCli(tmp_path / "data")
    cert = tmp_path / "gw.pem"
    cli("cert", "export", "--public", "--out", cert)
    secret_file = private_file(tmp_path / "canary.txt", CANARY + "\n")
    pg = f"{private_postgres.host}:{private_postgres.port}"
    token = cli("encrypt-value", "--cert", cert, "--datasource", "sealed", "--username", "u",
                stdin=CANARY).out.strip()  # fmt: skip
    assert_absent(token.encode(), "the EncryptedCredential")
    steps: list[tuple[list[str], str]] = [
        (["credentials", "put", "from-file", "--type", "postgresql", "--server", pg, "--database",
          private_postgres.database, "--username", "u", "--secret-file", str(secret_file)], ""),
        (["credentials", "put", "from-pipe", "--type", "http", "--server",
          f"{http_auth_server.base_url}/basic", "--username", "u"], CANARY),
        (["credentials", "put", "sealed", "--type", "mysql", "--server", "127.0.0.1:1",
          "--encrypted-credential", token], ""),
        (["credentials", "put", "from-pipe", "--type", "http", "--server",
          f"{http_auth_server.base_url}/basic", "--username", "u"], CANARY + "-v2"),
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
