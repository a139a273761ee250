"""``credentials test --all``, ``credentials history``, ``credentials list``,
``gwvault scheduler --once`` and the schedule's settings, as the command runs
them (in this process: each ``gwvault`` start would cost a second)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.vault.cli.gwvault_process import GWVAULT
from tests.vault.cli.in_process import Cli


def test_testing_all_lists_history_and_the_schedule_from_the_command_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(data_dir, capsys)
    db, other = tmp_path / "app.db", tmp_path / "other.db"
    for path in (db, other):
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE t (x)")
    assert cli("test-policy", "allow-sqlite-dir", tmp_path)[0] == 0
    for name, path in (("app", db), ("gone", other)):
        assert cli("credentials", "put", name, "--type", "sqlite", "--server", path)[0] == 0
    other.unlink()

    code, out, err = cli("credentials", "test", "--all", "--json")
    assert code == 1 and "1 of 2 credentials are not ok" in err
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["app"]["result"] == "ok" and rows["gone"]["result"] == "database_missing"
    assert str(other) in rows["gone"]["result_detail"]  # the local operator is an admin

    listed = {row["name"]: row for row in cli.json("credentials", "list", "--json")}
    assert listed["gone"]["result"] == "database_missing" and listed["gone"]["next_due_at"]
    assert "database_missing at " in cli("credentials", "list")[1]

    history = cli.json("credentials", "history", "gone", "--json")
    assert [(h["event"], h["trigger"], h["reason"]) for h in history] == [
        ("tested", "manual", "database_missing")
    ]
    assert "manual     database_missing" in cli("credentials", "history", "gone")[1]
    assert cli.json("scheduler", "--once", "--json") == []  # both were tested just now

    assert cli("policy", "set", "--health-every", "2h", "--health-concurrency", "8")[0] == 0
    shown = cli.json("policy", "show", "--json")
    assert (shown["health_check_every_seconds"], shown["health_check_concurrency"]) == (7200, 8)


@pytest.mark.parametrize(
    "bad",
    [
        ["credentials", "test", "app", "--all"],
        ["credentials", "test"],
        ["credentials", "test", "app", "--json"],
        ["credentials", "history", "app", "--limit", "0"],
        ["credentials", "history", "app", "--limit", "1e3"],
        ["credentials", "history", "no/such"],
        ["policy", "set", "--health-concurrency", "65"],
        ["policy", "set", "--health-concurrency", ""],
        ["policy", "set", "--health-every", "1m"],
        ["policy", "set", "--health-every", "31d"],
    ],
)
def test_bad_input_is_one_clear_error_and_exit_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str], bad: list[str]
) -> None:
    code, _, err = Cli(data_dir, capsys)(*bad)
    assert code == 2, err


def test_the_scheduler_runs_until_it_is_told_to_stop(data_dir: Path) -> None:
    scheduler = subprocess.Popen(
        [str(GWVAULT), "--data-dir", str(data_dir), "scheduler"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert scheduler.stdout is not None
        assert scheduler.stdout.readline() == "tested 0 credentials, 0 not ok\n"
        assert scheduler.stdout.readline().startswith("purged 0 deleted credentials")
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=30) == 0
    finally:
        scheduler.kill()
    assert scheduler.stderr is not None and scheduler.stderr.read() == ""
