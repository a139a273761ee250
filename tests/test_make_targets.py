"""What `make run` and `make test` install, read from make's own dry run.

`make run` installs what serving needs and nothing of the test toolchain (from
a fresh clone, measured by hand: the first prompt after 21.9 s with a 574 MB
venv before, 10.4 s with 95 MB after; see the README). `make test` still
installs everything, also after a `make run`, since the two have separate
stamps. Building a real venv here would take minutes, so the installation
itself was measured by hand; this test pins the split.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_TOOLS = ("pytest", "hypothesis", "ruff", "mypy", "playwright", "schemathesis", "atheris",
              "jwcrypto", "sslyze")  # fmt: skip


def planned(target: str) -> list[str]:
    """The commands `make -B TARGET` would run from scratch (nothing is run)."""
    done = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), target],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.splitlines()


def pip_installs(commands: list[str]) -> list[str]:
    return [c for c in commands if re.search(r"-m pip install .*(-e |--no-deps)", c)]


def test_make_run_installs_the_package_without_extras() -> None:
    installs = pip_installs(planned("run"))
    assert installs == [".venv/bin/python -m pip install --quiet -e ."]
    assert not any(tool in " ".join(installs) for tool in TEST_TOOLS)


def test_make_test_installs_the_test_extra_with_its_own_stamp() -> None:
    commands = planned("unit")
    assert any("install --quiet -e '.[test]'" in c for c in pip_installs(commands))
    assert "touch .venv/.installed" in commands
    assert "touch .venv/.installed-run" not in commands  # a `make run` stamp never stands in


def test_the_runtime_dependencies_hold_no_test_tool() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {
        re.split(r"[\[<>=!~ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]
    }
    assert names.isdisjoint(TEST_TOOLS)
    extra = {
        re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0].lower()
        for d in project["optional-dependencies"]["test"]
    }
    assert {"pytest", "ruff", "mypy", "playwright"} <= extra


def test_make_test_runs_the_suite_on_parallel_workers() -> None:
    """The whole suite must fit CI's 15 minutes on 2 cores: pytest-xdist workers,
    with ``xdist_group`` marks honoured (``--dist loadgroup``)."""
    [run] = [c for c in planned("unit") if c.startswith(".venv/bin/pytest")]
    workers = re.search(r" -n (\d+)", run)
    assert workers is not None and int(workers.group(1)) >= 2, run
    assert "--dist loadgroup" in run
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("pytest-xdist") for dep in project["optional-dependencies"]["test"])
