"""Run the installed ``gwvault`` command in a subprocess, as an admin would."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GWVAULT = Path(sys.executable).parent / "gwvault"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class GwvaultCli:
    """The installed command, bound to one data dir; records every output it saw."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = env or {}  # for a PKCS#11 vault: SOFTHSM2_CONF and the PIN
        self.outputs: list[str] = []

    def __call__(
        self, *args: str | Path, stdin: str = "", env: dict[str, str] | None = None
    ) -> Run:
        command = [str(GWVAULT), "--data-dir", str(self.data_dir), *map(str, args)]
        done = subprocess.run(
            command,
            input=stdin.encode(),
            capture_output=True,
            timeout=120,
            env={**os.environ, **self.env, **(env or {})},
            check=False,
        )
        run = Run(done.returncode, done.stdout.decode(), done.stderr.decode())
        self.outputs += [run.out, run.err]
        # The contract for every command: no traceback, and an error is one line.
        assert "Traceback" not in run.err, run.err
        if run.code != 0:
            assert run.err.count("\n") == 1 and run.err.startswith("gwvault"), run.err
        return run

    def put_login(self, name: str, secret: str = "pw", env: dict[str, str] | None = None) -> Run:
        """Store a basic-auth MySQL credential ``name`` with ``secret`` from stdin."""
        put = ["credentials", "put", name, "--type", "mysql", "--server", "db", "--username", "u"]
        return self(*put, stdin=secret, env=env)


def private_file(path: Path, content: str) -> Path:
    path.write_text(content)
    path.chmod(0o600)
    return path


def converse_in_order(args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """gwvault on a pseudo-terminal, answering the prompts in order (a prompt may repeat)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become gwvault
        os.execv(GWVAULT, [str(GWVAULT), *args])  # noqa: S606 - a fixed program path
    screen, pending, seen = "", list(answers), 0
    deadline = time.monotonic() + 60
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
        if pending and screen[seen:].rstrip().endswith(pending[0][0]):
            seen = len(screen)
            os.write(fd, (pending.pop(0)[1] + "\n").encode())
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen
