"""``--connection-string`` on encrypt-value and credentials put, through the
installed command's ``main`` in this process (no interpreter start per command,
and the logs can be read too)."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vault.cli.gwvault_process import Run, private_file
from vault.cli.main import main

SQLSERVER = "Data Source=sql.example.com,1433;Initial Catalog=sales;User ID=report;Encrypt=true"


class InProcess:
    """``gwvault --data-dir DIR ...`` through ``main``: exit code, output, and every log line."""

    def __init__(
        self, data_dir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
    ) -> None:
        self.data_dir = data_dir
        self._capsys = capsys
        self._caplog = caplog
        self.outputs: list[str] = []

    def __call__(self, *args: str | Path, stdin: str = "") -> Run:
        saved = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()))
        try:
            code = main(["--data-dir", str(self.data_dir), *map(str, args)])
        finally:
            sys.stdin = saved
        out, err = self._capsys.readouterr()
        self.outputs += [out, err, self._caplog.text]
        if code != 0:  # one error line, after any warnings
            assert err.splitlines()[-1].startswith("gwvault: error: "), err
        return Run(code, out, err)


@pytest.fixture
def gwvault(
    data_dir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[InProcess]:
    umask = os.umask(0o077)  # main sets it; give the test process its own back
    caplog.set_level(logging.DEBUG)
    try:
        yield InProcess(data_dir, capsys, caplog)
    finally:
        os.umask(umask)


@pytest.fixture
def cert(gwvault: InProcess, tmp_path: Path) -> Path:
    path = tmp_path / "gw.pem"
    assert gwvault("cert", "export", "--public", "--out", path).code == 0
    return path


def test_seal_a_string_from_a_file_then_store_it_from_the_command_line(
    gwvault: InProcess, tmp_path: Path, cert: Path, canary: str
) -> None:
    cli = gwvault
    plain = private_file(tmp_path / "sales.conn", f"{SQLSERVER};Password='{canary}'\n")
    sealed = cli("encrypt-value", "--cert", cert, "--name", "sales",
                 "--connection-string-file", plain)  # fmt: skip
    assert sealed.code == 0, sealed.err
    string = sealed.out.strip()
    assert string.startswith(f"{SQLSERVER};EncryptedCredential=ey")
    put = cli("credentials", "put", "sales", "--connection-string", string,
              "--contact", "dba@example.com")  # fmt: skip
    assert put.code == 0, put.err
    shown = cli("credentials", "show", "sales", "--json").json()
    assert shown["contact"] == "dba@example.com"  # the owner's dates come with a string too
    assert (shown["type"], shown["server"], shown["database"], shown["username"]) == (
        "sqlserver", "sql.example.com:1433", "sales", "report",
    )  # fmt: skip
    # Sealed for "sales": another name does not open it.
    other = cli("credentials", "put", "hr", "--connection-string", string)
    assert other.code == 2
    assert not any(canary in output for output in cli.outputs)


def test_a_url_from_stdin_is_sealed_and_stored_from_a_file(
    gwvault: InProcess, tmp_path: Path, cert: Path, canary: str
) -> None:
    cli = gwvault
    url = "postgresql://alice@db.example.com/sales?sslmode=verify-full"
    with_password = url.replace("alice@", f"alice:{canary}@")
    sealed = cli("encrypt-value", "--cert", cert, "--name", "pg", "--connection-string-file",
                 "-", stdin=with_password + "\n")  # fmt: skip
    assert sealed.code == 0, sealed.err
    assert sealed.out.startswith(f"{url}&encrypted_credential=ey")
    stored = cli("credentials", "put", "pg", "--connection-string-file",
                 private_file(tmp_path / "pg.conn", sealed.out))  # fmt: skip
    assert stored.code == 0, stored.err
    assert cli("credentials", "show", "pg", "--json").json()["username"] == "alice"
    assert not any(canary in output for output in cli.outputs)


def test_a_password_in_clear_is_refused_everywhere_and_never_shown(
    gwvault: InProcess, data_dir: Path, tmp_path: Path, cert: Path, canary: str
) -> None:
    cli = gwvault
    plain = f"{SQLSERVER};PWD={canary}"
    plain_file = private_file(tmp_path / "plain.conn", plain)
    refusals: list[tuple[str | Path, ...]] = [
        ("credentials", "put", "sales", "--connection-string", plain),
        ("credentials", "put", "sales", "--connection-string-file", plain_file),
        ("credentials", "put", "sales", "--connection-string-file", "-"),
        # On the command line even the sealing command refuses it: others saw it in ps.
        ("encrypt-value", "--cert", cert, "--name", "sales", "--connection-string", plain),
    ]
    for command in refusals:
        run = cli(*command, stdin=plain)
        assert run.code == 2, run.err
        assert "password in clear" in run.err and "gwvault encrypt-value" in run.err
        assert run.out == ""
    assert not any(canary in output for output in cli.outputs)
    assert cli("credentials", "list", "--json").json() == []
    for stored in data_dir.rglob("*"):
        if stored.is_file():
            assert canary.encode() not in stored.read_bytes(), stored


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--connection-string", "Data Source=db;Colour=blue"], "'colour'"),
        (
            ["--connection-string", f"{SQLSERVER};EncryptedCredential=x", "--type", "mysql"],
            "drop --type",
        ),
        (["--connection-string", SQLSERVER], "no EncryptedCredential"),
        (
            ["--connection-string", f"{SQLSERVER};EncryptedCredential=x", "--tls", "require"],
            "is weaker",
        ),
        ([], "give --type and --server, or --connection-string"),
    ],
)
def test_bad_strings_and_flags_exit_2_with_one_clear_line(
    gwvault: InProcess, flags: list[str], said: str
) -> None:
    run = gwvault("credentials", "put", "sales", *flags)
    assert run.code == 2 and said in run.err, run.err


def test_trust_server_certificate_is_warned_about_and_refused_for_a_sql_login(
    gwvault: InProcess,
) -> None:
    string = f"{SQLSERVER};TrustServerCertificate=true;EncryptedCredential=x"
    run = gwvault("credentials", "put", "sales", "--connection-string", string)
    warning, error = run.err.splitlines()
    assert warning.startswith(
        "gwvault: warning: TrustServerCertificate=true means TLS mode require"
    )
    assert run.code == 2 and "only to a server whose certificate is verified" in error
