"""Every file gwvault writes is private, and it reads no secret others could have read.

Already checked elsewhere (not repeated): keystore.key 0600 and vault.db without
group/other bits after ``Gateway.initialize`` (tests/vault/test_gateway.py), a
recovery bundle, an audit export and a PKCS#12 export 0600 each on its own
(tests/vault/keys/test_recovery.py, tests/vault/cli/test_audit_cli.py,
tests/vault/keys/test_certificates.py), and refusal of a 0644 secret file, TLS
key and keystore.key (tests/vault/cli/test_cli_contract.py,
tests/vault/cli/test_web_access_cli.py, tests/agent_keys/test_file_keystore.py).

Added here: the data dir and *every* file in it (including SQLite's -wal/-shm)
after each step of a whole CLI lifecycle, refusal of group-only (0640) and
other-only (0604) secret files for each flag that reads one, and refusal of a
vault database (or its -wal/-shm) that group or others can read (T-DD-4).
"""

from __future__ import annotations

import datetime
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError
from agent_keys.randomness import system_random
from agent_keys.tls_identity import generate_tls_identity
from tests.conftest import RECOVERY_KEY, make_context
from tests.vault.cli.gwvault_process import GwvaultCli, private_file
from vault.gateway import Gateway

PASSWORD = "quiet Harbor 7 lantern orbit"
Recorder = Callable[[str, object], None]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_private(data_dir: Path, step: str) -> int:
    assert _mode(data_dir) == 0o700, (step, oct(_mode(data_dir)))
    files = [p for p in data_dir.rglob("*")]
    for path in files:
        expected = 0o700 if path.is_dir() else 0o600
        assert _mode(path) == expected, (step, path.name, oct(_mode(path)))
    names = {p.name for p in files}
    assert {"vault.db", "keystore.key"} <= names, (step, names)
    return len(files)


def test_every_file_stays_private_through_a_lifecycle(
    tmp_path: Path, record_property: Recorder
) -> None:
    data_dir = tmp_path / "data"
    cli = GwvaultCli(data_dir)
    key_file = private_file(tmp_path / "recovery.key", RECOVERY_KEY + "\n")
    password = private_file(tmp_path / "p12.pass", PASSWORD + "\n")
    identity = generate_tls_identity(
        ["gw.example.internal"], datetime.datetime.now(datetime.UTC), system_random
    )
    chain = tmp_path / "chain.pem"
    chain.write_bytes(identity.chain_pem)
    tls_key = private_file(tmp_path / "tls.key", identity.private_key_pem().reveal().decode())
    out = tmp_path / "out"
    out.mkdir()
    exports = {
        "bundle": out / "b.gwb",
        "audit": out / "audit.jsonl",
        "p12": out / "gw.p12",
    }
    steps: list[tuple[str, list[str | Path], str]] = [
        ("init", ["init", "--name", "gw", "--recovery-key-file", key_file], ""),
        ("put", ["credentials", "put", "sales", "--type", "mysql", "--server", "db",
                 "--username", "u"], "pw"),
        ("recovery export", ["recovery", "export", "--out", exports["bundle"],
                             "--recovery-key-file", key_file], ""),
        ("audit export", ["audit", "export", "--out", exports["audit"]], ""),
        ("cert export", ["cert", "export", "--out", exports["p12"], "--password-file", password],
         ""),
        ("tls import", ["tls", "import", "--cert", chain, "--key", tls_key], ""),
    ]  # fmt: skip
    checked = 0
    for step, args, stdin in steps:
        run = cli(*args, stdin=stdin)
        assert run.code == 0, (step, run.err)
        checked += _assert_private(data_dir, step)
    for name, path in exports.items():
        assert _mode(path) == 0o600, (name, oct(_mode(path)))
    record_property("cases", checked + len(exports))


@pytest.fixture
def cli(data_dir: Path) -> GwvaultCli:
    return GwvaultCli(data_dir)


@pytest.mark.parametrize("mode", [0o640, 0o604])
@pytest.mark.parametrize("flag", ["--secret-file", "--recovery-key-file", "--password-file"])
def test_a_secret_file_group_or_others_can_read_is_refused(
    cli: GwvaultCli, tmp_path: Path, flag: str, mode: int
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(RECOVERY_KEY + "\n")
    secret.chmod(mode)
    commands: dict[str, list[str | Path]] = {
        "--secret-file": ["credentials", "put", "sales", "--type", "mysql", "--server", "db",
                          "--username", "u"],
        "--recovery-key-file": ["recovery", "verify"],
        "--password-file": ["cert", "export", "--out", tmp_path / "gw.p12"],
    }  # fmt: skip
    command = commands[flag]
    run = cli(*command, flag, secret)
    assert run.code == 2 and "chmod 600" in run.err, run.err  # a bad input file: exit 2
    assert not (tmp_path / "gw.p12").exists()
    secret.chmod(0o600)  # the same file, private, is read (the check is the mode)
    assert cli(*command, flag, secret).code == 0


@pytest.fixture
def wal_open(data_dir: Path) -> Iterator[Path]:
    """The vault with its -wal and -shm present: another connection is reading it."""
    with closing(sqlite3.connect(data_dir / "vault.db")) as reader:
        reader.execute("SELECT count(*) FROM settings").fetchall()
        assert (data_dir / "vault.db-wal").exists() and (data_dir / "vault.db-shm").exists()
        yield data_dir


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
@pytest.mark.parametrize("name", ["vault.db", "vault.db-wal", "vault.db-shm"])
def test_a_database_file_group_or_others_can_read_is_refused(
    wal_open: Path, name: str, mode: int
) -> None:
    # 0644 in a 0755 data dir was used silently: every other local user could
    # copy the wrapped keys, the trail and the metadata (T-DD-4).
    path = wal_open / name
    path.chmod(mode)
    before = (wal_open / "vault.db").read_bytes()
    with pytest.raises(AccessDeniedError, match=f"chmod 600 {path}"):
        Gateway.open(wal_open, make_context())
    run = GwvaultCli(wal_open)("status")
    assert run.code == 1 and f"{name} is accessible to group or others" in run.err, run.err
    assert _mode(path) == mode and (wal_open / "vault.db").read_bytes() == before
    path.chmod(0o600)  # the same files, private, are used (the check is the mode)
    assert GwvaultCli(wal_open)("status").code == 0
