"""Secrets typed at a terminal prompt (a real pseudo-terminal, as a person sees it)."""

from __future__ import annotations

import os
import pty
import select
import shutil
import time
from pathlib import Path

from tests.conftest import RECOVERY_KEY
from tests.vault.cli.gwvault_process import GWVAULT, converse_in_order
from vault.cli.input import PROMPT_ATTEMPTS


def converse(args: list[str], answers: dict[str, str], timeout: float = 60.0) -> tuple[int, str]:
    """Run gwvault on a pty, answering each prompt that ends with a key of ``answers``."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become gwvault
        os.execv(GWVAULT, [str(GWVAULT), *args])  # noqa: S606 - a fixed program path
    screen, pending = "", dict(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096).decode(errors="replace")
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
        for prompt in list(pending):
            if screen.rstrip().endswith(prompt.rstrip()):
                os.write(fd, (pending.pop(prompt) + "\n").encode())
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen


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
