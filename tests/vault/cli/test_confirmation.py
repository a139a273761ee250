"""A destructive command asks a person at a terminal first, naming what it
destroys; "no" (or just Enter) changes nothing and exits 1; --yes and scripts
(stdin not a terminal) go ahead without a question."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.vault.cli.gwvault_process import GwvaultCli, converse_in_order

QUESTION = "Delete the credential sales? [y/N]"


def _vault(vault_templates: dict[str, Path], tmp_path: Path) -> GwvaultCli:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    cli = GwvaultCli(tmp_path / "data")
    assert cli.put_login("sales").code == 0
    return cli


def _names(cli: GwvaultCli) -> list[str]:
    return [row["name"] for row in cli("credentials", "list", "--json").json()]


def test_a_no_at_the_terminal_changes_nothing(
    vault_templates: dict[str, Path], tmp_path: Path
) -> None:
    cli = _vault(vault_templates, tmp_path)
    for answer in ("", "n", "no", "yes please"):
        code, screen = converse_in_order(
            ["--data-dir", str(cli.data_dir), "credentials", "delete", "sales"],
            [(QUESTION, answer)],
        )
        assert code == 1, screen
        assert "kept 30 days" in screen and "credentials restore sales" in screen
        assert "not confirmed; nothing changed" in screen
        assert _names(cli) == ["sales"]


def test_a_yes_at_the_terminal_deletes(vault_templates: dict[str, Path], tmp_path: Path) -> None:
    cli = _vault(vault_templates, tmp_path)
    code, screen = converse_in_order(
        ["--data-dir", str(cli.data_dir), "credentials", "delete", "sales"], [(QUESTION, "y")]
    )
    assert code == 0 and "deleted credential sales" in screen
    assert _names(cli) == []


def test_a_purge_says_the_secret_is_gone_for_good(
    vault_templates: dict[str, Path], tmp_path: Path
) -> None:
    cli = _vault(vault_templates, tmp_path)
    assert cli("credentials", "delete", "sales").code == 0
    code, screen = converse_in_order(
        ["--data-dir", str(cli.data_dir), "credentials", "purge", "sales"],
        [("Purge the credential sales? [y/N]", "n")],
    )
    assert code == 1 and "gone for good" in screen and "nothing changed" in screen
    assert [row["name"] for row in cli("credentials", "list", "--deleted", "--json").json()] == [
        "sales"
    ]


def test_yes_flag_and_scripts_are_not_asked(
    vault_templates: dict[str, Path], tmp_path: Path
) -> None:
    cli = _vault(vault_templates, tmp_path)
    code, screen = converse_in_order(
        ["--data-dir", str(cli.data_dir), "credentials", "delete", "sales", "--yes"], []
    )
    assert code == 0 and "[y/N]" not in screen
    assert cli.put_login("hr").code == 0  # sales's name stays reserved while it is deleted
    piped = cli("credentials", "delete", "hr")  # stdin is a pipe: a script
    assert piped.code == 0 and "[y/N]" not in piped.out + piped.err
    assert _names(cli) == []


def test_every_destructive_command_takes_yes(
    vault_templates: dict[str, Path], tmp_path: Path
) -> None:
    cli = _vault(vault_templates, tmp_path)
    for command in (
        ["users", "remove", "nobody"],
        ["tokens", "revoke", "nothing"],
        ["entry-link", "revoke", "00000000-0000-0000-0000-000000000000"],
        ["cluster", "remove", "nomember"],
    ):
        # Asked at a terminal, with the object named; "no" leaves before the vault opens.
        code, screen = converse_in_order(
            ["--data-dir", str(cli.data_dir), *command], [("[y/N]", "n")]
        )
        assert code == 1 and command[-1] in screen and "nothing changed" in screen, screen
        # --yes goes ahead (to the vault's own answer: there is no such object).
        run = cli(*command, "--yes")
        assert run.code != 0 and "not confirmed" not in run.err, run.err
