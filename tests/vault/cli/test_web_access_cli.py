"""`gwvault users|tokens|entry-link|endpoint|tls|serve` through the installed command."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_keys.randomness import system_random
from agent_keys.tls_identity import generate_tls_identity
from tests.service_fixtures import free_tcp_port
from tests.vault.cli.gwvault_process import GWVAULT, GwvaultCli, private_file
from vault.context import utc_now


@pytest.fixture
def cli(vault_templates: dict[str, Path], tmp_path: Path) -> Iterator[GwvaultCli]:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    yield GwvaultCli(tmp_path / "data")


def test_users_add_list_passwd_remove(cli: GwvaultCli) -> None:
    assert cli("users", "list", "--json").json() == []
    assert cli("users", "add", "ada", "--role", "admin", stdin="short").code == 2
    assert (
        cli("users", "add", "ada", "--role", "admin", stdin="ada's long passphrase 1\n").code == 0
    )
    assert cli("users", "add", "ada", "--role", "creator", stdin="another long phrase 2").code == 1
    [user] = cli("users", "list", "--json").json()
    assert (user["name"], user["role"]) == ("ada", "admin") and "password_hash" not in user
    assert cli("users", "passwd", "ada", stdin="ada's newer passphrase 3").code == 0
    assert cli("users", "add", "bo", "--role", "creator", stdin="bo's long passphrase 4").code == 0
    assert cli("users", "remove", "bo").code == 0
    assert cli("users", "remove", "bo").code == 1


def test_the_last_admin_can_be_neither_removed_nor_demoted(cli: GwvaultCli) -> None:
    assert cli("users", "add", "ada", "--role", "admin", stdin="ada's long passphrase 1").code == 0
    assert cli("users", "add", "bo", "--role", "creator", stdin="bo's long passphrase 2").code == 0
    for refused in (("remove", "ada"), ("set-role", "ada", "auditor")):
        run = cli("users", *refused)
        assert run.code == 1  # the input is fine; the operation is refused
        assert run.err == "gwvault: error: ada is the last admin; add another admin first\n"
    assert cli("users", "set-role", "ada", "root").code == 2
    assert cli("users", "set-role", "nobody", "admin").code == 1
    assert cli("users", "set-role", "bo", "admin").out == "bo is now admin (was creator)\n"
    assert cli("users", "set-role", "bo", "admin").out == "bo is already admin; nothing changed\n"
    assert cli("users", "set-role", "ada", "auditor").code == 0
    assert cli("users", "remove", "bo").code == 1
    roles = {user["name"]: user["role"] for user in cli("users", "list", "--json").json()}
    assert roles == {"ada": "auditor", "bo": "admin"}
    actions = [event["action"] for event in cli("audit", "list", "--json").json()]
    assert actions.count("user.change-refused") == 3 and actions.count("user.role-changed") == 2


def test_a_token_is_printed_once_alone_on_the_last_line(cli: GwvaultCli) -> None:
    run = cli("tokens", "create", "--name", "etl", "--role", "creator")
    token = run.out.splitlines()[-1]
    assert token.startswith("gwv_") and " " not in token
    listed = cli("tokens", "list", "--json")
    assert token not in listed.out and listed.json()[0]["name"] == "etl"
    assert cli("tokens", "revoke", "etl").code == 0
    assert "revoked" in cli("tokens", "list").out
    assert token not in "".join(cli.outputs[1:])


def test_entry_links_and_endpoint_settings(cli: GwvaultCli) -> None:
    sales = ("entry-link", "create", "--datasource", "sales", "--type", "mysql", "--server", "db")
    link = cli(*sales, "--expires", "15m")
    assert link.code == 0 and link.out.splitlines()[-1].startswith("https://127.0.0.1:8050/entry/")
    assert "(mysql db)" in link.out
    for expires in ("2h", "0m", "15", "forever"):
        assert cli(*sales, "--expires", expires).code == 2
    assert cli("entry-link", "create", "--datasource", "sales").code == 2  # no target: refused
    assert cli(*sales[:-1], "db/../x:99999").code == 2  # a server that can never work
    assert cli("endpoint", "set", "--port", "9443").code == 0
    assert cli("endpoint", "show", "--json").json()["url"] == "https://127.0.0.1:9443"
    assert cli("endpoint", "set", "--host", "0.0.0.0").code == 2  # noqa: S104 - refused is the point
    assert cli("endpoint", "set", "--host", "0.0.0.0", "--allow-remote").code == 0  # noqa: S104
    assert "--url-base" in cli(*sales).err  # every address: which to hand out is named


def test_tls_show_regenerate_and_import(cli: GwvaultCli, tmp_path: Path) -> None:
    first = cli("tls", "show", "--json").json()
    assert first["source"] == "generated" and "127.0.0.1" in first["names"]
    assert cli("tls", "regenerate").code == 0
    assert cli("tls", "show", "--json").json()["sha256"] != first["sha256"]

    identity = generate_tls_identity(["gw.example.internal"], utc_now(), system_random)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(identity.chain_pem)
    key = private_file(tmp_path / "key.pem", identity.private_key_pem().reveal().decode())
    assert cli("tls", "import", "--cert", chain, "--key", key).code == 0
    shown = cli("tls", "show", "--json").json()
    assert shown["source"] == "imported" and "gw.example.internal" in shown["names"]

    other = generate_tls_identity([], utc_now(), system_random).private_key_pem().reveal().decode()
    assert (
        cli("tls", "import", "--cert", chain, "--key", private_file(tmp_path / "o.pem", other)).code
        == 2
    )
    key.chmod(0o644)
    assert cli("tls", "import", "--cert", chain, "--key", key).code == 2  # an input file


def test_serve_answers_and_stops_on_sigterm(cli: GwvaultCli) -> None:
    token = cli("tokens", "create", "--name", "probe", "--role", "auditor").out.splitlines()[-1]
    refused = cli("serve", "--allow-root", "--host", "0.0.0.0")  # noqa: S104 - refused is the point
    assert refused.code == 2 and "allow-remote" in refused.err
    port = free_tcp_port()
    server = subprocess.Popen(
        [str(GWVAULT), "--data-dir", str(cli.data_dir), "serve", "--allow-root",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith(f"serving https://127.0.0.1:{port}")
        url = f"https://127.0.0.1:{port}/api/v1/status"
        anonymous = _curl(url)
        assert anonymous.splitlines()[-1] == "401"
        with_token = _curl(url, "-H", f"Authorization: Bearer {token}")
        assert json.loads(with_token.rsplit("\n", 1)[0])["name"] == "gw-test"
    finally:
        server.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = server.wait(timeout=15)
    assert code == 0 and time.monotonic() - started < 15


def _curl(url: str, *args: str) -> str:
    done = subprocess.run(
        ["curl", "-sk", "-w", "\n%{http_code}", *args, url],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout
