"""`gwvault init --store` and `cluster join|members|remove|status`, as an admin runs them.

Against a real PostgreSQL server that checks passwords and serves TLS; the
walk-through is the README's "Run a cluster" section.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.conftest import RECOVERY_KEY
from tests.postgres_servers import StoreLogin
from tests.vault.cli.gwvault_process import GwvaultCli, private_file


@pytest.fixture
def store_url(fresh_store_login: StoreLogin) -> str:
    login = fresh_store_login.login
    return (
        f"postgresql://{login.user}@127.0.0.1:{login.port}/{login.database}"
        f"?sslmode=verify-full&sslrootcert={fresh_store_login.ca_file}"
    )


@pytest.fixture
def password_file(tmp_path: Path, fresh_store_login: StoreLogin) -> Path:
    return private_file(tmp_path / "store-password", fresh_store_login.login.password + "\n")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return private_file(tmp_path / "recovery-key", RECOVERY_KEY + "\n")


def test_the_readme_walk_through_init_join_list_remove(
    tmp_path: Path, store_url: str, password_file: Path, key_file: Path,
    fresh_store_login: StoreLogin,
) -> None:  # fmt: skip
    first, second = GwvaultCli(tmp_path / "gw1"), GwvaultCli(tmp_path / "gw2")
    store = ("--store", store_url, "--store-password-file", password_file)
    init = first("init", "--name", "gw-cluster", *store, "--member-name", "gw1",
                 "--recovery-key-file", key_file)  # fmt: skip
    assert init.code == 0, init.err
    # The second member is given the password at a prompt (here: a pipe).
    joined = second("cluster", "join", "--store", store_url, "--ask-store-password",
                    "--name", "gw2", "--recovery-key-file", key_file,
                    stdin=fresh_store_login.login.password + "\n")  # fmt: skip
    assert joined.code == 0, joined.err
    put = first.put_login("sales", secret="through-gw1")
    assert put.code == 0, put.err
    assert second("credentials", "verify").out.startswith("1 of 1 credentials open")

    listed = second("cluster", "members", "--json").json()
    assert [(m["name"], m["state"], m["this_member"]) for m in listed] == [
        ("gw1", "enabled", False),
        ("gw2", "enabled", True),
    ]
    status = first("cluster", "status", "--json").json()
    assert status["role"] == "primary" and status["epoch"] == 1
    assert len(status["members"]) == 2

    removed = first("cluster", "remove", "gw2", "--rotate", "--recovery-key-file", key_file)
    assert removed.code == 0, removed.err
    assert "rotated the master key to version 2" in removed.out
    stopped = second("credentials", "verify")
    assert stopped.code == 1 and "removed" in stopped.err
    assert first("audit", "verify").code == 0

    # The password is only in the data dir's libpq password file, never in
    # cluster.json (which names the file) or any output.
    password = fresh_store_login.login.password
    for data_dir in (tmp_path / "gw1", tmp_path / "gw2"):
        assert password not in (data_dir / "cluster.json").read_text()
        pgpass = data_dir / "store.pgpass"
        assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600 and password in pgpass.read_text()
    assert not any(password in output for output in first.outputs + second.outputs)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:hunter2@127.0.0.1/db", "carries a password"),
        ("postgresql://u@db.example.com/db", "without a verified TLS certificate"),
        ("postgresql://u@db.example.com/db?sslmode=require", "without a verified TLS certificate"),
        ("postgresql://u@127.0.0.1/", "names no database"),
        ("mysql://u@127.0.0.1/db", "must be a postgresql:// URL"),
        ("postgresql://u@127.0.0.1/db?bogus_option=1", "libpq can read"),
        ("host=localhost hostaddr=10.0.0.5 dbname=db user=u", "without a verified TLS"),
        ("host=127.0.0.1 dbname=db hunter2", "libpq can read"),
        ("", "--store is empty"),
    ],
)
def test_a_store_url_that_would_leak_or_mislead_is_refused_and_nothing_is_made(
    tmp_path: Path, key_file: Path, url: str, message: str
) -> None:
    cli = GwvaultCli(tmp_path / "gw")
    refused = cli("init", "--name", "gw", "--store", url, "--recovery-key-file", key_file)
    assert refused.code == 2 and message in refused.err
    assert "hunter2" not in refused.err
    assert not (tmp_path / "gw").exists()


def test_a_store_password_file_others_can_read_is_refused(
    tmp_path: Path, store_url: str, key_file: Path, fresh_store_login: StoreLogin
) -> None:
    loose = tmp_path / "loose-password"
    loose.write_text(fresh_store_login.login.password)
    loose.chmod(0o644)
    cli = GwvaultCli(tmp_path / "gw")
    refused = cli("init", "--name", "gw", "--store", store_url, "--store-password-file", loose,
                  "--recovery-key-file", key_file)  # fmt: skip
    assert refused.code != 0 and "chmod 600" in refused.err
    assert not (tmp_path / "gw").exists()


def init_first_member(tmp_path: Path, store: tuple[str | Path, ...], key_file: Path) -> None:
    made = GwvaultCli(tmp_path / "a")("init", "--name", "gw", *store,
                                      "--recovery-key-file", key_file)  # fmt: skip
    assert made.code == 0, made.err


def test_a_store_password_that_is_not_text_is_refused(
    tmp_path: Path, store_url: str, key_file: Path
) -> None:
    binary = tmp_path / "binary-password"
    binary.write_bytes(b"\xff\xfepw")
    binary.chmod(0o600)
    cli = GwvaultCli(tmp_path / "gw")
    refused = cli("init", "--name", "gw", "--store", store_url, "--store-password-file", binary,
                  "--recovery-key-file", key_file)  # fmt: skip
    assert refused.code == 2 and "UTF-8" in refused.err
    assert not (tmp_path / "gw").exists() or not any((tmp_path / "gw").iterdir())


def test_a_second_init_on_the_same_database_is_told_to_join(
    tmp_path: Path, store_url: str, password_file: Path, key_file: Path
) -> None:
    store = ("--store", store_url, "--store-password-file", password_file)
    init_first_member(tmp_path, store, key_file)
    again = GwvaultCli(tmp_path / "b")("init", "--name", "gw", *store,
                                       "--recovery-key-file", key_file)  # fmt: skip
    assert again.code == 1 and "already holds a vault" in again.err and "cluster join" in again.err
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_a_join_with_a_wrong_recovery_key_a_taken_name_or_a_wrong_password_leaves_nothing(
    tmp_path: Path, store_url: str, password_file: Path, key_file: Path
) -> None:
    store = ("--store", store_url, "--store-password-file", password_file)
    init_first_member(tmp_path, store, key_file)
    wrong_key = private_file(tmp_path / "wrong", "not the recovery key of this cluster\n")
    joiner = GwvaultCli(tmp_path / "b")
    refused = joiner("cluster", "join", *store, "--recovery-key-file", wrong_key)
    assert refused.code == 2 and "does not open" in refused.err
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    taken = joiner("cluster", "join", *store, "--name", "gw-a-again", "--recovery-key-file",
                   key_file)  # fmt: skip
    assert taken.code == 0, taken.err
    same_name = GwvaultCli(tmp_path / "c")("cluster", "join", *store, "--name", "gw-a-again",
                                           "--recovery-key-file", key_file)  # fmt: skip
    assert same_name.code == 1 and "named 'gw-a-again' already" in same_name.err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
    joiner = GwvaultCli(tmp_path / "d")
    bad_password = private_file(tmp_path / "bad-password", "not-the-password\n")
    refused = joiner("cluster", "join", "--store", store_url, "--store-password-file",
                     bad_password, "--recovery-key-file", key_file)  # fmt: skip
    assert refused.code == 1 and "password authentication failed" in refused.err
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_cluster_commands_on_a_single_machine_say_how_to_move(
    vault_templates: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    answer = GwvaultCli(tmp_path / "data")("cluster", "members")
    assert answer.code == 2 and "store migrate" in answer.err
