"""`gwvault entry-link create|list|revoke` through the installed command: the link
names the address actually served, the list never shows a secret, revoke closes."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vault.cli.gwvault_process import GwvaultCli
from tests.vault.cli.test_cluster_cli import key_file, password_file, store_url
from tests.web.served_process import gwvault_serve
from vault.served_address import RUN_FILE, served_address

__all__ = ["key_file", "password_file", "store_url"]  # fixtures for the cluster case
SALES = ("entry-link", "create", "--datasource", "sales", "--type", "mysql", "--server", "db")


@pytest.fixture
def cli(vault_templates: dict[str, Path], tmp_path: Path) -> Iterator[GwvaultCli]:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    yield GwvaultCli(tmp_path / "data")


def _secret(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_list_shows_open_links_by_id_and_revoke_closes_one(cli: GwvaultCli) -> None:
    assert cli("entry-link", "list").out == "no open entry links\n"
    made = cli(*SALES, "--database", "crm", "--tls", "require")
    assert made.code == 0, made.err
    secret = _secret(made.out.splitlines()[-1])
    [row] = cli("entry-link", "list", "--json").json()
    assert (row["datasource"], row["server"], row["database"], row["tls"]) == (
        "sales", "db", "crm", "require",
    )  # fmt: skip
    assert f"id {row['id']}" in made.out
    assert row["created_by"].startswith("os:") and row["tests_used"] == 0
    plain = cli("entry-link", "list").out
    assert row["id"] in plain and "sales" in plain and "mysql db/crm" in plain

    revoked = cli("entry-link", "revoke", row["id"])
    assert revoked.code == 0 and f"revoked the entry link {row['id']} for sales" in revoked.out
    assert cli("entry-link", "list", "--json").json() == []
    again = cli("entry-link", "revoke", row["id"])
    assert again.code == 1 and "(it is revoked)" in again.err
    unknown = cli("entry-link", "revoke", "0b7c6a1e-2f4d-4c59-9a51-8d3e0f6b7a21")
    assert unknown.code == 1 and "(it is unknown)" in unknown.err
    odd = cli("entry-link", "revoke", "../../etc/passwd")
    assert odd.code == 2 and "passwd" not in odd.err
    audit = cli("audit", "list", "--action", "entry-link.*", "--json").json()
    assert [e["action"] for e in audit] == ["entry-link.revoked", "entry-link.created"]
    # The secret was printed once, by create, and nowhere since.
    assert sum(secret in output for output in cli.outputs) == 1


def test_without_a_server_the_link_uses_the_endpoint_settings_and_says_so(
    cli: GwvaultCli,
) -> None:
    assert cli("endpoint", "set", "--port", "9443").code == 0
    made = cli(*SALES)
    assert made.out.splitlines()[-1].startswith("https://127.0.0.1:9443/entry/")
    assert "address from the endpoint settings (no gwvault serve runs)" in made.out


def test_the_link_names_the_port_the_running_server_listens_on(cli: GwvaultCli) -> None:
    with gwvault_serve(cli.data_dir) as (server, port):
        assert port != 8050  # the stored setting: what the link used to say
        assert (cli.data_dir / RUN_FILE).stat().st_mode & 0o777 == 0o600
        made = cli(*SALES)
        assert made.out.splitlines()[-1].startswith(f"https://127.0.0.1:{port}/entry/")
        assert f"the running gwvault serve (pid {server.pid})" in made.out
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert not (cli.data_dir / RUN_FILE).exists()  # removed at stop
    assert cli(*SALES).out.splitlines()[-1].startswith("https://127.0.0.1:8050/entry/")


def test_a_killed_servers_run_file_is_stale_not_trusted(cli: GwvaultCli) -> None:
    with gwvault_serve(cli.data_dir) as (server, port):
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        deadline = time.monotonic() + 10  # the workers die with the parent, and the lock
        while served_address(cli.data_dir) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (cli.data_dir / RUN_FILE).exists()  # left behind by SIGKILL
        made = cli(*SALES)
        assert f":{port}/" not in made.out
        assert "https://127.0.0.1:8050/entry/" in made.out


def test_a_run_file_someone_else_planted_is_ignored(cli: GwvaultCli) -> None:
    planted = cli.data_dir / RUN_FILE
    planted.write_text('{"host": "evil.example", "port": 443, "pid": 1}')
    planted.chmod(0o644)
    assert "https://127.0.0.1:8050/entry/" in cli(*SALES).out
    planted.unlink()
    planted.symlink_to("/etc/hostname")
    assert "https://127.0.0.1:8050/entry/" in cli(*SALES).out


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://vault.example.com", "https://vault.example.com/entry/"),
        ("https://vault.example.com/", "https://vault.example.com/entry/"),
        ("https://Vault.Example.com:8443", "https://vault.example.com:8443/entry/"),
        ("https://vault.example.com:443", "https://vault.example.com/entry/"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443/entry/"),
    ],
)
def test_url_base_names_the_address_people_reach(cli: GwvaultCli, base: str, url: str) -> None:
    made = cli(*SALES, "--url-base", base)
    assert made.code == 0 and made.out.splitlines()[-1].startswith(url)
    assert "address from --url-base" in made.out


@pytest.mark.parametrize(
    "base",
    [
        "http://vault.example.com",
        "https://vault.example.com/prefix",
        "https://vault.example.com/..",
        "https://evil.example@vault.example.com",
        "https://vault.example.com?x=1",
        "https://vault.example.com#frag",
        "https://vault.example.com:0",
        "https://vault.example.com:99999",
        "https://vault.example.com:",
        "https://vault example.com",
        "https://",
        "https://0.0.0.0",
        "javascript:alert(1)",
        "//vault.example.com",
        "https://vault.example.com\\@evil.example",
        "https://xn--vault-\u00e9.example",
        "https://" + "a" * 400,
    ],
)
def test_a_bad_url_base_is_refused_before_a_link_is_made(cli: GwvaultCli, base: str) -> None:
    refused = cli(*SALES, "--url-base", base)
    assert refused.code == 2 and "--url-base" in refused.err
    assert cli("entry-link", "list", "--json").json() == []


def test_every_address_needs_url_base(cli: GwvaultCli) -> None:
    assert cli("endpoint", "set", "--host", "0.0.0.0", "--allow-remote").code == 0  # noqa: S104
    refused = cli(*SALES)
    assert refused.code == 2 and "--url-base" in refused.err
    assert cli("entry-link", "list", "--json").json() == []
    assert cli(*SALES, "--url-base", "https://gw.example").code == 0


def test_a_cluster_member_needs_url_base(
    tmp_path: Path, store_url: str, password_file: Path, key_file: Path
) -> None:
    # Members serve on their own addresses, usually behind a load balancer.
    member = GwvaultCli(tmp_path / "gw1")
    store = ("--store", store_url, "--store-password-file", password_file)
    init = member("init", "--name", "gw-cluster", *store, "--recovery-key-file", key_file)
    assert init.code == 0, init.err
    refused = member(*SALES)
    assert refused.code == 2 and "cluster member" in refused.err and "--url-base" in refused.err
    assert member("entry-link", "list", "--json").json() == []
    made = member(*SALES, "--url-base", "https://vault.example.com")
    assert made.out.splitlines()[-1].startswith("https://vault.example.com/entry/")
