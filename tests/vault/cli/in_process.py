"""``gwvault`` commands run in this process through ``vault.cli.main``: the
parser, the handlers and ``exit_code_for`` as the command runs them, against a
real vault, without a subprocess per command (each would cost a quarter of a
second).  Every failure must be one line on stderr and never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vault.cli.main import main


class Cli:
    def __init__(self, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.data_dir, self.capsys = data_dir, capsys

    def __call__(self, *args: str | Path) -> tuple[int, str, str]:
        try:
            code = main(["--data-dir", str(self.data_dir), *map(str, args)])
        except SystemExit as e:  # a usage error: argparse exits before main() runs a handler
            code = int(e.code or 0)
        out, err = self.capsys.readouterr()
        assert "Traceback" not in err
        if code != 0:
            # "gwvault: error: ...", or argparse's "gwvault COMMAND: error: ..."
            assert err.count("\n") == 1 and err.startswith("gwvault") and ": error: " in err, err
        return code, out, err

    def json(self, *args: str | Path) -> Any:
        """The command's ``--json`` output (added if not given); it must succeed."""
        code, out, err = self(*args, *([] if "--json" in args else ["--json"]))
        assert code == 0, err
        return json.loads(out)
