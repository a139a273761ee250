"""The command line as a new user meets it: where the global flags go, what the
data-dir refusal advises, how fingerprints read, and which exit code means what."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RECOVERY_KEY
from tests.vault.cli.gwvault_process import (
    GWVAULT,
    GwvaultCli,
    Run,
    converse_in_order,
    private_file,
)

MYSQL = ["--type", "mysql", "--server", "db", "--username", "u"]


def gwvault(*args: str | Path, stdin: str = "", env: dict[str, str] | None = None) -> Run:
    """The installed command with exactly these arguments (no --data-dir added)."""
    done = subprocess.run(
        [str(GWVAULT), *map(str, args)],
        input=stdin.encode(),
        capture_output=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    run = Run(done.returncode, done.stdout.decode(), done.stderr.decode())
    assert "Traceback" not in run.err, run.err
    if run.code != 0:
        assert run.err.count("\n") == 1 and run.err.startswith("gwvault"), run.err
    return run


@pytest.fixture
def data_dir(vault_templates: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(vault_templates["ec-p256"], tmp_path / "data"))


@pytest.mark.parametrize(
    "command",
    [["status", "--json"], ["credentials", "list", "--json"], ["tls", "show", "--json"],
     ["cert", "show", "--json"], ["keystore", "show", "--json"], ["audit", "list", "--json"]],
)  # fmt: skip
def test_data_dir_goes_before_or_after_the_command(data_dir: Path, command: list[str]) -> None:
    before = gwvault("--data-dir", data_dir, *command)
    after = gwvault(*command, "--data-dir", data_dir)
    assert before.code == after.code == 0, (before.err, after.err)
    assert before.json() == after.json()


def test_the_flag_after_the_command_beats_the_environment(data_dir: Path, tmp_path: Path) -> None:
    elsewhere = {"GWVAULT_DATA_DIR": str(tmp_path / "no-vault-here")}
    assert gwvault("status", env=elsewhere).code == 1
    assert gwvault("status", "--data-dir", data_dir, env=elsewhere).code == 0
    assert gwvault("status", env={"GWVAULT_DATA_DIR": str(data_dir)}).code == 0


def test_pin_file_goes_after_the_command_too(data_dir: Path, tmp_path: Path) -> None:
    # A file keystore never reads the PIN, but the file's flag is parsed in both places.
    pin = private_file(tmp_path / "pin", "1234\n")
    assert gwvault("status", "--pin-file", pin, "--data-dir", data_dir).code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["--data-dir", "A", "status", "--data-dir", "B"],
        ["--pin-file", "A", "credentials", "list", "--pin-file", "B"],
        ["status", "--data-dir", "A", "--data-dir", "B"],
    ],
)
def test_a_global_flag_given_twice_differently_is_one_usage_error(args: list[str]) -> None:
    run = gwvault(*args)
    assert run.code == 2 and "given" in run.err and "A" in run.err and "B" in run.err


def test_the_same_value_in_both_places_is_accepted(data_dir: Path) -> None:
    assert gwvault("--data-dir", data_dir, "status", "--data-dir", data_dir).code == 0


def test_a_shared_directory_is_refused_without_advice_to_chmod_it(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    for path in (shared, Path("/tmp")):
        run = gwvault("status", "--data-dir", path)
        assert run.code == 1
        assert "not a private data dir" in run.err and f"--data-dir {path / 'gw'}" in run.err
        assert "chmod" not in run.err


def test_the_users_own_group_writable_dir_gets_the_chmod_advice(data_dir: Path) -> None:
    data_dir.chmod(0o770)
    run = gwvault("status", "--data-dir", data_dir)
    assert run.code == 1 and f"run: chmod 700 {data_dir}" in run.err


def openssl_sha256(pem_file: Path) -> str:
    done = subprocess.run(
        ["openssl", "x509", "-fingerprint", "-sha256", "-noout", "-in", str(pem_file)],
        capture_output=True,
        check=True,
        text=True,
    )
    return done.stdout.strip().split("=", 1)[1]  # "sha256 Fingerprint=AB:CD:..."


def test_fingerprints_read_as_openssl_prints_them(data_dir: Path, tmp_path: Path) -> None:
    cli = GwvaultCli(data_dir)
    gateway_pem = tmp_path / "gateway.pem"
    assert cli("cert", "export", "--public", "--out", gateway_pem).code == 0
    gateway_hex = openssl_sha256(gateway_pem)
    assert len(gateway_hex) == 95 and gateway_hex == gateway_hex.upper()
    with sqlite3.connect(data_dir / "vault.db") as db:  # the endpoint's certificate, as stored
        (tls_pem,) = db.execute("SELECT cert_pem FROM tls_identity").fetchone()
    (tmp_path / "tls.pem").write_text(tls_pem)
    tls_hex = openssl_sha256(tmp_path / "tls.pem")

    status, cert, tls = cli("status"), cli("cert", "show"), cli("tls", "show")
    assert f"cert_fingerprint_sha256     {gateway_hex}" in status.out
    assert f"fingerprint_sha256  {gateway_hex}" in cert.out
    assert f"fingerprint_sha256  {tls_hex}" in tls.out
    # The JWE kid stays base64url, labelled as such; the TLS one is hex only.
    kid = cli("status", "--json").json()["cert_thumbprint"]
    assert f"cert_jwe_kid                {kid}" in status.out and "jwe_kid  " in cert.out
    assert cli("tls", "show", "--json").json()["sha256"] not in tls.out

    as_json = cli("status", "--json").json()
    assert as_json["cert_fingerprint_sha256"] == gateway_hex
    cert_json = cli("cert", "show", "--json").json()
    assert cert_json["fingerprint_sha256"] == gateway_hex and cert_json["thumbprint"] == kid
    assert cert_json["versions"][0]["fingerprint_sha256"] == gateway_hex
    tls_json = cli("tls", "show", "--json").json()
    assert tls_json["fingerprint_sha256"] == tls_hex and "-" not in tls_hex


# The exit-code rule (README "Exit codes"): 2 for what the caller gave, files
# included; 1 for a valid request that failed.
def test_every_bad_input_file_exits_2(data_dir: Path, tmp_path: Path) -> None:
    cli = GwvaultCli(data_dir)
    readable = tmp_path / "readable"
    readable.write_text("pw\n")
    readable.chmod(0o640)
    not_a_cert = private_file(tmp_path / "not-a-cert.pem", "hello\n")
    existing = private_file(tmp_path / "existing.pem", "keep\n")
    cases: dict[str, list[str | Path]] = {
        "missing secret file": ["--secret-file", tmp_path / "missing"],
        "group-readable secret file": ["--secret-file", readable],
        "secret file is a directory": ["--secret-file", tmp_path],
    }
    for why, flags in cases.items():
        run = cli("credentials", "put", "x", *MYSQL, *flags)
        assert run.code == 2, (why, run.err)
    cert_cases = {"missing cert": tmp_path / "none.pem", "not a certificate": not_a_cert}
    for why, cert in cert_cases.items():
        run = cli("encrypt-value", "--cert", cert, "--datasource", "x", *MYSQL, stdin="pw")
        assert run.code == 2, (why, run.err)
    assert cli("audit", "export", "--out", existing).code == 2
    assert existing.read_text() == "keep\n"
    assert cli("credentials", "list", "--json").json() == []


def test_a_valid_request_that_fails_exits_1(data_dir: Path, tmp_path: Path) -> None:
    cli = GwvaultCli(data_dir)
    assert cli("credentials", "show", "nobody").code == 1  # not found
    assert cli("credentials", "delete", "nobody").code == 1
    assert GwvaultCli(tmp_path / "no-vault")("status").code == 1
    assert cli("init", "--name", "again", stdin=RECOVERY_KEY).code == 1  # a vault is there


def test_sqlite_defaults_to_anonymous_and_refuses_a_login(data_dir: Path, tmp_path: Path) -> None:
    cli = GwvaultCli(data_dir)
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    sqlite: list[str | Path] = ["--type", "sqlite", "--server", db]
    logins: list[list[str | Path]] = [
        ["--username", "u"],
        ["--auth", "basic"],
        ["--secret-file", tmp_path / "x"],
    ]
    for login in logins:
        run = cli("credentials", "put", "app", *sqlite, *login)
        assert run.code == 2 and "takes no user name or secret" in run.err
    put = cli("credentials", "put", "app", *sqlite)
    assert put.code == 0, put.err
    assert cli("credentials", "show", "app", "--json").json()["auth"] == "anonymous"


def test_a_sqlite_put_of_a_missing_or_odd_file_is_refused_and_changes_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    cli = GwvaultCli(data_dir)
    before = (data_dir / "vault.db").read_bytes()
    for path in (tmp_path / "missing.db", tmp_path):
        run = cli("credentials", "put", "app", "--type", "sqlite", "--server", path)
        assert run.code == 2 and str(path) in run.err
    assert cli("credentials", "list", "--json").json() == []
    assert len((data_dir / "vault.db").read_bytes()) == len(before)
    assert not (tmp_path / "missing.db").exists()


def test_encrypt_value_for_sqlite_does_not_look_for_the_file(data_dir: Path) -> None:
    # It may run on another machine than the gateway: the file is checked at put.
    cli = GwvaultCli(data_dir)
    cert = data_dir.parent / "gw.pem"
    assert cli("cert", "export", "--public", "--out", cert).code == 0
    run = cli("encrypt-value", "--cert", cert, "--datasource", "app", "--type", "sqlite",
              "--server", "/srv/not/here.db")  # fmt: skip
    assert run.code == 0 and run.out.count(".") == 4, run.err


NETWORK_CLEARTEXT = [
    ["--type", "postgresql", "--server", "db.example.internal", "--tls", "disable",
     "--username", "u"],
    ["--type", "mysql", "--server", "192.0.2.7:3306", "--tls", "disable", "--username", "u"],
    ["--type", "http", "--server", "http://api.example.internal/v1", "--tls", "disable",
     "--auth", "anonymous"],
]  # fmt: skip
LOOPBACK_CLEARTEXT = [
    ["--type", "postgresql", "--server", "127.0.0.1:5432", "--tls", "disable", "--username", "u"],
    ["--type", "mysql", "--server", "localhost", "--tls", "disable", "--username", "u"],
    ["--type", "http", "--server", "http://[::1]:8080/v1", "--tls", "disable",
     "--auth", "anonymous"],
]  # fmt: skip


@pytest.mark.parametrize("target", NETWORK_CLEARTEXT)
def test_a_network_target_without_tls_needs_allow_cleartext(
    data_dir: Path, tmp_path: Path, target: list[str]
) -> None:
    cli = GwvaultCli(data_dir)
    cert = tmp_path / "gw.pem"
    assert cli("cert", "export", "--public", "--out", cert).code == 0
    sealing: list[str | Path] = ["encrypt-value", "--cert", cert, "--datasource", "app", *target]
    storing: list[str | Path] = ["credentials", "put", "app", *target]
    for command in (sealing, storing):
        refused = cli(*command, stdin="pw-secret")
        assert (
            refused.code == 2 and "--allow-cleartext" in refused.err and "in clear" in refused.err
        )
        assert refused.out == ""
    assert cli("credentials", "list", "--json").json() == []
    sealed = cli(*sealing, "--allow-cleartext", stdin="pw-secret")
    assert sealed.code == 0 and sealed.out.count(".") == 4
    assert sealed.err.startswith("gwvault: warning: ") and "in clear" in sealed.err
    stored = cli(*storing, "--allow-cleartext", stdin="pw-secret")
    assert stored.code == 0 and "warning" in stored.err, stored.err
    assert "pw-secret" not in sealed.err + stored.err


@pytest.mark.parametrize("target", LOOPBACK_CLEARTEXT)
def test_a_loopback_target_without_tls_is_accepted_silently(
    data_dir: Path, target: list[str]
) -> None:
    run = GwvaultCli(data_dir)("credentials", "put", "app", *target, stdin="pw")
    assert run.code == 0 and run.err == "", run.err


def test_a_weak_recovery_key_at_the_prompt_is_asked_again(tmp_path: Path) -> None:
    code, screen = converse_in_order(
        ["init", "--name", "gw-tty", "--data-dir", str(tmp_path / "data")],
        [("Recovery key:", "password1234"), ("Repeat the recovery key:", "password1234"),
         ("Recovery key:", RECOVERY_KEY), ("Repeat the recovery key:", RECOVERY_KEY + "x"),
         ("Recovery key:", RECOVERY_KEY), ("Repeat the recovery key:", RECOVERY_KEY)],
    )  # fmt: skip
    assert code == 0, screen
    assert screen.count("try again") == 2 and "differ" in screen
    assert "initialised gateway gw-tty" in screen
    assert "password1234" not in screen and RECOVERY_KEY not in screen


def test_a_weak_password_at_the_prompt_is_asked_again(data_dir: Path) -> None:
    strong = "four random words here"
    code, screen = converse_in_order(
        ["users", "add", "admin", "--role", "admin", "--data-dir", str(data_dir)],
        [("Password:", "short"), ("Repeat the password:", "short"),
         ("Password:", strong), ("Repeat the password:", strong)],
    )  # fmt: skip
    assert code == 0 and "added admin admin" in screen, screen
    assert screen.count("try again") == 1 and strong not in screen


def test_a_weak_value_from_a_pipe_or_file_fails_once_with_exit_2(
    data_dir: Path, tmp_path: Path
) -> None:
    run = GwvaultCli(tmp_path / "new")("init", "--name", "gw", stdin="password1234\n")
    assert run.code == 2 and "try again" not in run.err
    assert not (tmp_path / "new").exists()
    weak = private_file(tmp_path / "weak", "short\n")
    run = GwvaultCli(data_dir)("users", "add", "admin", "--role", "admin", "--password-file", weak)
    assert run.code == 2 and "try again" not in run.err
    assert GwvaultCli(data_dir)("users", "list", "--json").json() == []
