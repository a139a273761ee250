"""The CLI contract of the vault-core issue, end to end through the installed command."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RECOVERY_KEY
from tests.service_fixtures import HttpAuthServer, ServiceLogin
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
from tests.vault.cli.gwvault_process import GWVAULT, GwvaultCli, private_file

METADATA_KEYS = {"name", "type", "server", "database", "auth", "username", "key_version",
                 "created_at", "updated_at"}  # fmt: skip


@pytest.fixture(scope="module", params=["file", "pkcs11"])
def cli_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> GwvaultCli:
    """The whole contract runs once per keystore: a key file, and a SoftHSM2 token."""
    work = tmp_path_factory.mktemp("cli")
    key_file = private_file(work / "recovery.key", RECOVERY_KEY + "\n")
    keystore_flags: list[str] = []
    env: dict[str, str] = {}
    if request.param == "pkcs11":
        hsm: SoftHsm = request.getfixturevalue("softhsm")
        keystore_flags = ["--keystore", "pkcs11", "--pkcs11-module", hsm.module,
                          "--token-label", MAIN_TOKEN]  # fmt: skip
        env = hsm.cli_env()
    template = GwvaultCli(work / "data", env)
    run = template("init", "--name", "gw-cli", "--recovery-key-file", key_file, *keystore_flags)
    assert run.code == 0, run.err
    assert "initialised gateway gw-cli" in run.out
    assert template("status", "--json").json()["keystore"] == request.param
    return template


@pytest.fixture
def cli(cli_template: GwvaultCli, tmp_path: Path) -> Iterator[GwvaultCli]:
    shutil.copytree(cli_template.data_dir, tmp_path / "data")
    yield GwvaultCli(tmp_path / "data", cli_template.env)


def test_init_reads_the_recovery_key_from_a_pipe(tmp_path: Path) -> None:
    cli = GwvaultCli(tmp_path / "data")
    run = cli("init", "--name", "gw-pipe", "--key-type", "rsa-3072", stdin=RECOVERY_KEY + "\n")
    assert run.code == 0, run.err
    status = cli("status", "--json").json()
    assert (status["name"], status["key_type"], status["keystore"]) == (
        "gw-pipe",
        "rsa-3072",
        "file",
    )


@pytest.mark.parametrize("key", ["short-key", "password1234", "qwertyuiopasdfgh", ""])
def test_init_refuses_a_weak_recovery_key_and_creates_nothing(tmp_path: Path, key: str) -> None:
    run = GwvaultCli(tmp_path / "data")("init", "--name", "gw", stdin=key + "\n")
    assert run.code == 2
    assert not (tmp_path / "data").exists()


def test_init_refuses_to_overwrite_a_vault(cli: GwvaultCli) -> None:
    before = (cli.data_dir / "vault.db").read_bytes()
    run = cli("init", "--name", "again", stdin=RECOVERY_KEY)
    assert run.code == 1 and "refusing to overwrite" in run.err
    assert (cli.data_dir / "vault.db").read_bytes() == before


def test_status_json_has_the_contract_keys(cli: GwvaultCli) -> None:
    status = cli("status", "--json").json()
    assert {"gateway_id", "name", "key_type", "cert_thumbprint", "cert_not_after",
            "credentials", "keystore", "epoch"} <= status.keys()  # fmt: skip
    assert (status["name"], status["credentials"], status["epoch"]) == ("gw-cli", 0, 1)
    assert "name" in cli("status").out


def test_cert_show_and_public_export_agree(cli: GwvaultCli, tmp_path: Path) -> None:
    shown = cli("cert", "show", "--json").json()
    assert shown["thumbprint"] == cli("status", "--json").json()["cert_thumbprint"]
    out = tmp_path / "gw.pem"
    assert cli("cert", "export", "--public", "--out", out).code == 0
    assert out.read_text() == shown["pem"]
    assert "PRIVATE" not in out.read_text()


SALES_PG = ("--type", "postgresql", "--server", "127.0.0.1:5432", "--database", "sales")
MYSQL_DB = ("--type", "mysql", "--server", "db")


def _encrypt(cli: GwvaultCli, cert: Path, datasource: str, secret: str, *flags: str) -> str:
    # encrypt-value needs no vault: run it against a data dir that does not exist.
    nowhere = GwvaultCli(cli.data_dir.parent / "no-vault-here")
    run = nowhere("encrypt-value", "--cert", cert, "--datasource", datasource, *flags, stdin=secret)
    assert run.code == 0, run.err
    return run.out.strip()


def test_sealed_credentials_go_in_by_value_and_by_file(cli: GwvaultCli, tmp_path: Path) -> None:
    cert = tmp_path / "gw.pem"
    cli("cert", "export", "--public", "--out", cert)
    token = _encrypt(cli, cert, "sales", "pw-sales", *SALES_PG, "--username", "alice")
    assert token.count(".") == 4 and "pw-sales" not in token
    put = cli("credentials", "put", "sales", *SALES_PG, "--encrypted-credential", token)
    assert put.code == 0 and "created credential sales" in put.out
    token_file = tmp_path / "hr.jwe"
    hr_api = ("--type", "http", "--server", "https://hr.internal/api")
    token_file.write_text(_encrypt(cli, cert, "hr", "pw-hr", *hr_api, "--auth", "key") + "\n")
    put = cli("credentials", "put", "hr", *hr_api, "--encrypted-credential", f"@{token_file}")
    assert put.code == 0, put.err
    rows = cli("credentials", "list", "--json").json()
    assert [row["name"] for row in rows] == ["hr", "sales"]
    assert all(row.keys() >= METADATA_KEYS for row in rows)
    assert (rows[0]["auth"], rows[1]["username"]) == ("key", "alice")
    verify = cli("credentials", "verify")
    assert verify.code == 0 and "2 of 2 credentials open" in verify.out


def test_a_sealed_credential_for_another_data_source_or_gateway_is_refused(
    cli: GwvaultCli, tmp_path: Path
) -> None:
    cert = tmp_path / "gw.pem"
    cli("cert", "export", "--public", "--out", cert)
    token = _encrypt(cli, cert, "hr", "pw", *MYSQL_DB, "--username", "u")
    run = cli("credentials", "put", "sales", "--type", "mysql", "--server", "db",
              "--encrypted-credential", token, "--username", "x")  # fmt: skip
    assert run.code == 2  # mixing flags with a sealed value
    run = cli("credentials", "put", "sales", "--type", "mysql", "--server", "db",
              "--encrypted-credential", token)  # fmt: skip
    assert run.code == 2 and "does not open" in run.err
    other = GwvaultCli(tmp_path / "other")
    other("init", "--name", "gw-other", stdin=RECOVERY_KEY)
    other("cert", "export", "--public", "--out", tmp_path / "other.pem")
    foreign = _encrypt(cli, tmp_path / "other.pem", "sales", "pw", *MYSQL_DB, "--username", "u")
    run = cli("credentials", "put", "sales", "--type", "mysql", "--server", "db",
              "--encrypted-credential", foreign)  # fmt: skip
    assert run.code == 2
    assert cli("credentials", "list", "--json").json() == []


def test_put_from_a_secret_file_and_from_stdin_then_show_and_delete(
    cli: GwvaultCli, tmp_path: Path
) -> None:
    secret_file = private_file(tmp_path / "pw.txt", "pw-from-file\n")
    run = cli("credentials", "put", "sales", "--type", "postgresql", "--server", "db:5432",
              "--username", "alice", "--secret-file", secret_file)  # fmt: skip
    assert run.code == 0, run.err
    run = cli("credentials", "put", "sales", "--type", "postgresql", "--server", "db:5432",
              "--username", "alice", stdin="pw-from-stdin")  # fmt: skip
    assert "updated credential sales (version 2)" in run.out
    shown = cli("credentials", "show", "sales", "--json").json()
    assert shown.keys() >= METADATA_KEYS and shown["version"] == 2
    assert "pw-from" not in cli("credentials", "show", "sales").out
    assert cli("credentials", "delete", "sales").code == 0
    assert cli("credentials", "show", "sales", "--json").json()["state"] == "deleted"
    assert cli("credentials", "delete", "sales").code == 1  # deleted already


def test_a_secret_file_others_can_read_is_refused(cli: GwvaultCli, tmp_path: Path) -> None:
    secret_file = tmp_path / "pw.txt"
    secret_file.write_text("pw")
    secret_file.chmod(0o644)
    run = cli("credentials", "put", "sales", "--type", "mysql", "--server", "db",
              "--username", "u", "--secret-file", secret_file)  # fmt: skip
    assert run.code == 2 and "chmod 600" in run.err  # a bad input file, like a missing one


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["init"],
        ["credentials", "put", "x", "--type", "oracle", "--server", "db"],
        ["credentials", "put", "x", "--type", "mysql"],
        ["credentials", "put", "x", "--type", "mysql", "--server", "db", "--secret", "pw"],
        ["cert", "export", "--out", "x.pem"],
        ["encrypt-value", "--datasource", "x", *MYSQL_DB],
    ],
)
def test_bad_usage_exits_2_with_one_line(cli: GwvaultCli, args: list[str]) -> None:
    assert cli(*args).code == 2


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (
            ["credentials", "put", "../x", "--type", "mysql", "--server", "db", "--username", "u"],
            "pw",
        ),
        (
            ["credentials", "put", "x", "--type", "mysql", "--server", "u:p@db", "--username", "u"],
            "pw",
        ),
        (["credentials", "put", "x", "--type", "mysql", "--server", "db", "--username", "u"], ""),
        (
            [
                "credentials",
                "put",
                "x",
                "--type",
                "sqlite",
                "--server",
                "/tmp/x.db",
                "--username",
                "u",
            ],
            "pw",
        ),
        (
            [
                "credentials",
                "put",
                "x",
                "--type",
                "mysql",
                "--server",
                "db",
                "--encrypted-credential",
                "a.b.c",
            ],
            "",
        ),
        (["encrypt-value", "--cert", "/etc/hostname", "--datasource", "x", *MYSQL_DB], "pw"),
        (["encrypt-value", "--cert", "/nonexistent.pem", "--datasource", "x", *MYSQL_DB], "pw"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(
    cli: GwvaultCli, args: list[str], stdin: str
) -> None:
    before = (cli.data_dir / "vault.db").read_bytes()
    assert cli(*args, stdin=stdin).code == 2
    assert cli("credentials", "list", "--json").json() == []
    assert len((cli.data_dir / "vault.db").read_bytes()) == len(before)


def test_a_corrupt_database_or_a_non_vault_dir_is_one_clear_error(
    cli: GwvaultCli, tmp_path: Path
) -> None:
    nowhere = GwvaultCli(tmp_path / "empty")
    (tmp_path / "empty").mkdir(mode=0o700)
    assert nowhere("status").code == 1
    for name in ("vault.db-wal", "vault.db-shm"):
        (cli.data_dir / name).unlink(missing_ok=True)
    (cli.data_dir / "vault.db").write_bytes(b"garbage" * 1000)
    run = cli("credentials", "list")
    assert run.code == 1 and "corrupt" in run.err


def test_data_dir_from_the_environment_and_python_dash_m(cli: GwvaultCli) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vault", "status", "--json"],
        capture_output=True,
        env={"GWVAULT_DATA_DIR": str(cli.data_dir), "PATH": "/usr/bin:/bin", **cli.env},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b'"gw-cli"' in done.stdout
    assert GWVAULT.exists()


def _put_login(
    cli: GwvaultCli, name: str, kind: str, login: ServiceLogin, password: str, *tls: str | Path
) -> None:
    server = f"{login.host}:{login.port}"
    run = cli("credentials", "put", name, "--type", kind, "--server", server, "--database",
              login.database, "--username", login.user, *tls, stdin=password)  # fmt: skip
    assert run.code == 0, run.err


def _ca_file(tmp_path: Path, pem: str | None) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text(pem or "")
    path.chmod(0o644)
    return path


def test_connection_test_against_a_password_checking_postgresql(
    cli: GwvaultCli, private_postgres: ServiceLogin, tmp_path: Path
) -> None:
    ca = ("--tls", "verify-full", "--tls-ca", _ca_file(tmp_path, private_postgres.ca_pem))
    _put_login(cli, "pg-right", "postgresql", private_postgres, private_postgres.password, *ca)
    _put_login(cli, "pg-wrong", "postgresql", private_postgres, "not-the-password", *ca)
    right = cli("credentials", "test", "pg-right")
    assert right.code == 0 and "PostgreSQL" in right.out and "(TLS, tls verify-full)" in right.out
    wrong = cli("credentials", "test", "pg-wrong")
    assert wrong.code == 1 and "(auth_failed)" in wrong.err
    assert "password authentication failed" in wrong.err
    assert "not-the-password" not in wrong.out + wrong.err


def test_the_default_tls_policy_refuses_a_server_the_system_does_not_trust(
    cli: GwvaultCli, private_postgres: ServiceLogin
) -> None:
    _put_login(cli, "pg", "postgresql", private_postgres, private_postgres.password)
    assert cli("credentials", "show", "pg", "--json").json()["tls"] == "verify-full"
    run = cli("credentials", "test", "pg")
    assert run.code == 1 and "(tls_failed)" in run.err


@pytest.mark.parametrize(
    ("flags", "complaint", "code"),
    [
        (["--tls", "require", "--tls-ca", "CA"], "verifies nothing", 2),
        (["--tls", "verify-ca"], "needs the CA", 2),
        (["--tls", "prefer"], "invalid choice", 2),
        (["--tls-ca", "KEY"], "other than certificates", 2),
        (["--tls-ca", "WRITABLE"], "writable by group or others", 2),  # a bad input file
    ],
)
def test_a_bad_tls_policy_is_refused_and_stores_nothing(  # noqa: PLR0917 - pytest fixtures
    cli: GwvaultCli,
    private_postgres: ServiceLogin,
    tmp_path: Path,
    flags: list[str],
    complaint: str,
    code: int,
) -> None:
    files = {"CA": _ca_file(tmp_path, private_postgres.ca_pem), "KEY": tmp_path / "key.pem"}
    files["KEY"].write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    files["WRITABLE"] = tmp_path / "open.pem"
    files["WRITABLE"].write_text(private_postgres.ca_pem or "")
    files["WRITABLE"].chmod(0o666)
    args = [str(files.get(flag, flag)) for flag in flags]
    run = cli("credentials", "put", "x", "--type", "postgresql", "--server", "db", "--username",
              "u", *args, stdin="pw")  # fmt: skip
    assert run.code == code and complaint in run.err, run.err
    assert cli("credentials", "list", "--json").json() == []


def test_connection_test_against_mariadb(cli: GwvaultCli, mariadb_user: ServiceLogin) -> None:
    plain = ("--tls", "disable")  # the machine's MariaDB has no TLS
    _put_login(cli, "my-right", "mysql", mariadb_user, mariadb_user.password, *plain)
    _put_login(cli, "my-wrong", "mysql", mariadb_user, "not-the-password", *plain)
    assert cli("credentials", "test", "my-right").code == 0
    wrong = cli("credentials", "test", "my-wrong")
    assert wrong.code == 1 and "Access denied" in wrong.err


def test_connection_test_over_http_basic(
    cli: GwvaultCli, https_auth_server: HttpAuthServer, trusted_ca_pem: str, tmp_path: Path
) -> None:
    url, ca = f"{https_auth_server.base_url}/basic", _ca_file(tmp_path, trusted_ca_pem)
    for name, password in (("web-right", https_auth_server.password), ("web-wrong", "nope")):
        run = cli("credentials", "put", name, "--type", "http", "--server", url, "--tls-ca", ca,
                  "--username", https_auth_server.user, stdin=password)  # fmt: skip
        assert run.code == 0, run.err
    assert cli("credentials", "test", "web-right").code == 0
    wrong = cli("credentials", "test", "web-wrong")
    assert wrong.code == 1 and "401" in wrong.err
    plain = cli("credentials", "put", "web-plain", "--type", "http", "--server", "http://h/",
                "--tls", "disable", "--username", "u", stdin="pw")  # fmt: skip
    assert plain.code == 2 and "only to a server whose certificate is verified" in plain.err


def test_connection_test_of_a_sqlite_file(cli: GwvaultCli, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    for name, path in (("app", db), ("gone", tmp_path / "gone.db")):
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE t (x)")
        run = cli("credentials", "put", name, "--type", "sqlite", "--server", path)
        assert run.code == 0, run.err  # auth anonymous is the sqlite default
    (tmp_path / "gone.db").unlink()  # gone after it was stored
    refused = cli("credentials", "test", "app")
    assert refused.code == 1 and "(refused_by_policy)" in refused.err
    assert cli("test-policy", "allow-sqlite-dir", tmp_path).code == 0
    assert cli("test-policy", "show", "--json").json()["sqlite_dirs"] == [str(tmp_path.resolve())]
    assert cli("credentials", "test", "app").code == 0
    assert cli("credentials", "test", "gone").code == 1
    assert not (tmp_path / "gone.db").exists()


def test_a_sealed_credential_opens_only_for_the_target_it_names(
    cli: GwvaultCli, tmp_path: Path
) -> None:
    cert = tmp_path / "gw.pem"
    cli("cert", "export", "--public", "--out", cert)
    token = _encrypt(cli, cert, "sales", "pw", *SALES_PG, "--username", "alice")
    for elsewhere in (
        ("--type", "http", "--server", "http://127.0.0.1:9/"),
        ("--type", "postgresql", "--server", "attacker.example:5432", "--database", "sales"),
        ("--type", "postgresql", "--server", "127.0.0.1:5432", "--database", "postgres"),
        (*SALES_PG, "--tls", "disable"),
    ):
        run = cli("credentials", "put", "sales", *elsewhere, "--encrypted-credential", token)
        assert run.code == 2 and "does not open" in run.err, elsewhere
    assert cli("credentials", "put", "sales", *SALES_PG, "--encrypted-credential", token).code == 0


def test_the_seal_policy_is_shown_set_and_bounded(cli: GwvaultCli) -> None:
    others = {"credentials_retention_days": 30, "health_check_every_seconds": 86400,
              "health_check_concurrency": 4}  # fmt: skip
    assert cli("policy", "show", "--json").json() == {"sealed_max_age_seconds": 4 * 3600, **others}
    assert cli("policy", "set", "--sealed-max-age", "30m").code == 0
    assert cli("policy", "show", "--json").json() == {"sealed_max_age_seconds": 1800, **others}
    for refused in ("1m", "8d", "forever", "-5m"):
        assert cli("policy", "set", "--sealed-max-age", refused).code == 2
    assert cli("policy", "set").code == 2
    assert cli("policy", "show", "--json").json() == {"sealed_max_age_seconds": 1800, **others}


def test_the_test_policy_lists_change_and_are_recorded(cli: GwvaultCli) -> None:
    assert cli("test-policy", "allow-network", "127.0.0.1/32", "--port", "5432").code == 0
    assert cli("test-policy", "allow-network", "fd00::/8").code == 0
    shown = cli("test-policy", "show", "--json").json()
    assert shown["allowed_networks"] == ["127.0.0.1/32 port 5432", "fd00::/8"]
    assert cli("test-policy", "remove-network", "fd00::/8").code == 0
    assert cli("test-policy", "remove-network", "fd00::/8").code == 1  # not listed
    assert cli("test-policy", "allow-network", "127.0.0.1/8").code == 2  # host bits set
    assert cli("test-policy", "allow-sqlite-dir", cli.data_dir).code == 2  # the vault's own
    changes = [
        e for e in cli("audit", "list", "--json").json() if e["action"] == "test-policy.changed"
    ]
    assert len(changes) == 3
