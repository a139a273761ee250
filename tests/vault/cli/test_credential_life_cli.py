"""``gwvault credentials delete|restore|purge|disable|enable`` and ``list --deleted``,
and the retention setting (``gwvault policy set --credentials-retention``).

Run in this process through ``vault.cli.main`` (the parser, the handlers and
``exit_code_for`` as the command runs them) against a real vault: a
subprocess per command would cost a second each.  The terminal's question is
asked of a real pseudo-terminal in ``test_confirmation``.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.vault.cli.in_process import Cli
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway


@pytest.fixture
def cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    umask = os.umask(0o077)  # main() sets the command's umask: give the test's back after
    with Gateway.open(data_dir, make_context()) as gateway:
        payload = CredentialPayload("basic", "u", Secret.from_text("pw-life"))
        CredentialService(gateway).put("sales", DataSource("mysql", "db"), payload)
    try:
        yield Cli(data_dir, capsys)
    finally:
        os.umask(umask)


def test_delete_lists_as_deleted_restores_and_purges(cli: Cli) -> None:
    code, out, _ = cli("credentials", "delete", "sales")
    assert code == 0 and "can be restored until" in out
    assert cli.json("credentials", "list") == []
    (deleted,) = cli.json("credentials", "list", "--deleted")
    assert deleted["state"] == "deleted" and deleted["deleted_at"] and deleted["purge_after"]
    code, out, _ = cli("credentials", "list", "--deleted")
    assert out.startswith("sales  mysql") and f"purged after {deleted['purge_after']}" in out
    assert cli.json("credentials", "show", "sales")["state"] == "deleted"

    assert cli.json("credentials", "restore", "sales")["state"] == "active"
    code, _, err = cli("credentials", "restore", "sales")
    assert code == 1 and "not deleted" in err  # a conflict with the vault's state
    code, _, err = cli("credentials", "purge", "sales", "--yes")
    assert code == 1 and "delete it first" in err

    cli("credentials", "delete", "sales")
    assert cli.json("credentials", "purge", "sales", "--yes") == {"name": "sales", "purged": True}
    assert cli.json("credentials", "list", "--deleted") == []
    code, _, err = cli("credentials", "show", "sales")
    assert code == 1 and "no credential named" in err


def test_disable_and_enable_show_the_state(cli: Cli) -> None:
    code, out, _ = cli("credentials", "disable", "sales")
    assert code == 0 and "neither used nor tested" in out
    line = cli("credentials", "list")[1]
    assert "  disabled  " in line and line.rstrip().endswith("not tested while disabled")
    assert cli.json("credentials", "show", "sales")["disabled_at"] is not None
    code, _, err = cli("credentials", "disable", "sales")
    assert code == 1 and "already" in err
    assert cli.json("credentials", "enable", "sales")["state"] == "active"
    code, _, err = cli("credentials", "enable", "sales")
    assert code == 1 and "not disabled" in err


def test_the_retention_is_a_policy_setting_for_deletes_from_now_on(cli: Cli) -> None:
    assert cli.json("policy", "show")["credentials_retention_days"] == 30
    code, out, _ = cli("policy", "set", "--credentials-retention", "7")
    assert code == 0 and "kept 7 days" in out
    assert cli.json("policy", "show")["credentials_retention_days"] == 7
    deleted = cli.json("credentials", "delete", "sales")
    kept = _instant(deleted["purge_after"]) - _instant(deleted["deleted_at"])
    assert kept.days == 7


@pytest.mark.parametrize("days", ["6", "91", "30d", "٣٠"])
def test_a_bad_retention_is_bad_input_and_changes_nothing(cli: Cli, days: str) -> None:
    code, _, err = cli("policy", "set", "--credentials-retention", days, "--sealed-max-age", "1h")
    assert code == 2 and err.count("\n") == 1
    shown = cli.json("policy", "show")
    assert (shown["credentials_retention_days"], shown["sealed_max_age_seconds"]) == (30, 4 * 3600)


def test_hostile_names_are_refused_or_not_found(cli: Cli) -> None:
    for command, name in [("delete", "../sales"), ("restore", "sales\n"), ("purge", "x" * 300),
                          ("disable", "no-such"), ("enable", "-")]:  # fmt: skip
        code, _, err = cli("credentials", command, name, *(["--yes"] if command == "purge" else []))
        assert code in (1, 2) and err.count("\n") == 1, (name, err)  # not found, or bad
    assert cli.json("credentials", "show", "sales")["state"] == "active"


def _instant(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)
