"""Secrets typed at a terminal prompt (a real pseudo-terminal, as a person sees it)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import RECOVERY_KEY
from tests.vault.cli.gwvault_process import converse_in_order
from vault.cli.input import PROMPT_ATTEMPTS


def converse(args: list[str], answers: dict[str, str]) -> tuple[int, str]:
    """Run gwvault on a pty, answering each prompt in the order given."""
    return converse_in_order(args, list(answers.items()))


def test_init_prompts_twice_and_never_echoes(tmp_path: Path) -> None:
    code, screen = converse(
        ["--data-dir", str(tmp_path / "data"), "init", "--name", "gw-tty"],
        {"Recovery key:": RECOVERY_KEY, "Repeat the recovery key:": RECOVERY_KEY},
    )
    assert code == 0, screen
    assert "initialised gateway gw-tty" in screen
    assert RECOVERY_KEY not in screen


def test_init_refuses_two_different_entries_and_creates_nothing(tmp_path: Path) -> None:
    # Each mismatch is asked again, up to PROMPT_ATTEMPTS times; then exit 2.
    pair = [("Recovery key:", RECOVERY_KEY), ("Repeat the recovery key:", RECOVERY_KEY + "x")]
    code, screen = converse_in_order(
        ["--data-dir", str(tmp_path / "data"), "init", "--name", "gw-tty"],
        pair * PROMPT_ATTEMPTS,
    )
    assert code == 2 and screen.count("differ") == PROMPT_ATTEMPTS
    assert not (tmp_path / "data").exists()


def test_put_prompts_for_the_secret(vault_templates: dict[str, Path], tmp_path: Path) -> None:
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    put = [
        "credentials",
        "put",
        "sales",
        "--type",
        "mysql",
        "--server",
        "db",
        "--username",
        "alice",
    ]
    code, screen = converse(
        ["--data-dir", str(tmp_path / "data"), *put], {"Secret:": "typed-at-the-prompt"}
    )
    assert code == 0 and "created credential sales" in screen
    assert "typed-at-the-prompt" not in screen
