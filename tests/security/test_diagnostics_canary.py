"""A diagnostics bundle sent to support holds no secret (issue 19, T-DG-1).

Canaries go where a careless bundle would pick them up: a credential's secret
and user name (the user name also lands in the driver's message of a failed
test, which the audit trail keeps), an API token, an entry link's secret, the
recovery key and the proxy's password.  The bundle is built, and the zip's
bytes and every member are searched for each canary in clear, base64,
base64url, hex, URL-encoded and UTF-16 forms, and for a middle slice of it.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CANARY, RECOVERY_KEY
from tests.security.test_canary_leak import encodings
from tests.service_fixtures import ServiceLogin
from tests.vault.cli.gwvault_process import private_file
from vault.cli.main import main

CANARY_USER = "canaryuser_5be1d07e"


def forms(secret: str) -> list[bytes]:
    """The canary leak test's encodings, and the URL-encoded ones a link would use."""
    return [
        *encodings(secret),
        base64.b64encode(secret.encode()).rstrip(b"="),
        secret.encode().hex().upper().encode(),
        urllib.parse.quote(secret, safe="").encode(),
        urllib.parse.quote_plus(secret).encode(),
    ]


def test_the_diagnostics_bundle_holds_no_canary(
    vault_templates: dict[str, Path],
    tmp_path: Path,
    private_postgres: ServiceLogin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")

    def cli(*args: str | Path) -> str:
        code = main(["--data-dir", str(data_dir), *map(str, args)])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return f"{code}\n{out}"

    secret_file = private_file(tmp_path / "secret.txt", CANARY + "\n")
    key_file = private_file(tmp_path / "recovery.key", RECOVERY_KEY)
    server = f"{private_postgres.host}:{private_postgres.port}"
    assert cli("credentials", "put", "pg", "--type", "postgresql", "--server", server,
               "--database", private_postgres.database, "--username", CANARY_USER,
               "--secret-file", secret_file, "--tls", "require").startswith("0")  # fmt: skip
    assert cli("credentials", "test", "pg").startswith("1")  # the driver names the user
    token = cli("tokens", "create", "--name", "support", "--role", "auditor").split()[-1]
    link = cli("entry-link", "create", "--datasource", "entered", "--type", "mysql",
               "--server", "db", "--url-base", "https://gw.example:8050").split()[-1]  # fmt: skip
    link_secret = link.rsplit("/entry/", 1)[1]
    assert cli("recovery", "verify", "--recovery-key-file", key_file).startswith("0")
    proxy_password = "proxy-canary-0d1e5a77-pass"
    proxy_file = private_file(tmp_path / "proxy.txt", proxy_password + "\n")
    assert cli("proxy", "set", "custom", "--url", "http://proxy.example:3128", "--user",
               "gw", "--password-file", proxy_file).startswith("0")  # fmt: skip
    bundle = tmp_path / "support.zip"
    assert cli("diagnostics", "--out", bundle).startswith("0")

    # The driver's message the trail keeps names the user: the bundle must not carry it.
    with sqlite3.connect(data_dir / "vault.db") as db:
        (detail,) = db.execute(
            "SELECT details FROM audit_events WHERE action = 'credential.tested'"
        ).fetchone()
    assert CANARY_USER in detail
    canaries = {"secret": CANARY, "user": CANARY_USER, "token": token,
                "link": link_secret, "recovery key": RECOVERY_KEY,
                "proxy password": proxy_password}  # fmt: skip
    assert len(token) > 20 and len(link_secret) > 20
    with zipfile.ZipFile(bundle) as opened:
        places = {name: opened.read(name) for name in opened.namelist()}
    places["the zip file"] = bundle.read_bytes()
    tests = json.loads(places["gwvault-diagnostics/failed-tests.json"])
    assert [(t["datasource"], t["reason"]) for t in tests] == [("pg", "auth_failed")]
    for what, canary in canaries.items():
        for form in forms(canary):
            for place, data in places.items():
                assert form not in data, f"the {what} ({form[:10]!r}...) is in {place}"
