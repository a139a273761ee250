"""SIGKILL a real ``gwvault`` process at random points; the vault stays whole.

Each operation that writes the vault (``credentials put``, ``keys rotate``,
``keystore migrate``, ``restore``) is first run once to completion to measure
how long it takes, then started again and again and killed with SIGKILL after
a random delay within that duration (seeded: ``GWVAULT_CRASH_SEED``).  After
every kill the vault must open, no credential may be lost or duplicated, the
audit trail must verify, and running the same command again must finish.

``crashes`` counts the kills that landed while the command was still running
(the process died of SIGKILL rather than exiting on its own).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RECOVERY_KEY
from tests.security.scale import scaled
from tests.vault.cli.gwvault_process import GWVAULT, GwvaultCli, private_file
from tests.vault.keys.rotation_helpers import insert_credentials, key_state, verify_all
from vault.data_dir import DataDir

SEED = int(os.environ.get("GWVAULT_CRASH_SEED", "20250107"))
RUNS = scaled(3, 30)
RecordProperty = Callable[[str, object], None]
# Long mode (40+ kills per operation) takes minutes per test.
pytestmark = pytest.mark.timeout(scaled(300, 1800))


def _seconds(command: list[str | Path], stdin: bytes = b"") -> float:
    """Run ``command`` to completion (it must succeed); how long it took."""
    started = time.monotonic()
    done = subprocess.run(command, input=stdin, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return time.monotonic() - started


def _delay(rng: random.Random, measured: float) -> float:
    """A random point within the measured run: half over all of it, half in its
    last third, where most commands write (the start is interpreter start-up)."""
    if rng.random() < 0.5:
        return rng.uniform(0.0, measured)
    return rng.uniform(measured * 2 / 3, measured)


def _run_and_kill(command: list[str | Path], delay: float, stdin: bytes = b"") -> bool:
    """Start ``command`` and SIGKILL it after ``delay`` s; True if it was still running."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None
    try:
        process.stdin.write(stdin)
        process.stdin.close()
    except BrokenPipeError:  # it exited (or failed) before reading its input
        pass
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process.returncode == -signal.SIGKILL


def _names(cli: GwvaultCli) -> list[str]:
    listing = cli("credentials", "list", "--json")
    assert listing.code == 0, listing.err
    return [item["name"] for item in listing.json()]


def _assert_whole(cli: GwvaultCli, expected: set[str], where: str) -> None:
    """The vault opens, holds exactly ``expected`` once each, all open, the trail verifies."""
    status = cli("status")
    assert status.code == 0, f"{where}: the vault does not open: {status.err}"
    names = _names(cli)
    assert len(names) == len(set(names)), f"{where}: duplicated credentials {sorted(names)}"
    assert set(names) == expected, f"{where}: lost {expected - set(names)}"
    verify = cli("credentials", "verify")
    assert verify.code == 0, f"{where}: {verify.out} {verify.err}"
    audit = cli("audit", "verify")
    assert audit.code == 0, f"{where}: the audit trail does not verify: {audit.out} {audit.err}"


def _changes(cli: GwvaultCli, name: str) -> int:
    """How many created/updated entries the audit trail holds for credential ``name``."""
    run = cli("audit", "list", "--credential", name, "--limit", "1000", "--json")
    assert run.code == 0, run.err
    return sum(e["action"] in ("credential.created", "credential.updated") for e in run.json())


def _version(cli: GwvaultCli, name: str) -> int:
    show = cli("credentials", "show", name, "--json")
    assert show.code == 0, show.err
    version: int = show.json()["version"]
    return version


def test_credentials_put_killed_at_random_points(
    data_dir: Path, tmp_path: Path, record_property: RecordProperty
) -> None:
    rng = random.Random(SEED)
    cli = GwvaultCli(data_dir)
    for name in ("shared", "keep-a", "keep-b"):
        assert cli.put_login(name, f"pw-{name}").code == 0
    expected = {"shared", "keep-a", "keep-b"}
    secret_file = private_file(tmp_path / "secret", "file-borne secret\n")
    base: list[str | Path] = [GWVAULT, "--data-dir", data_dir, "credentials", "put"]
    flags = ["--type", "mysql", "--server", "db", "--username", "u"]
    measured = _seconds([*base, "measure", *flags, "--secret-file", secret_file])
    expected.add("measure")
    crashes = 0
    for case in range(RUNS):
        # Even cases create a new credential from a file, odd ones update one from stdin.
        name = f"new-{case:03d}" if case % 2 == 0 else "shared"
        source = ["--secret-file", str(secret_file)] if case % 2 == 0 else []
        stdin = b"" if case % 2 == 0 else f"stdin secret {case}".encode()
        command = [*base, name, *flags, *source]
        before_changes = _changes(cli, name)
        version_before = _version(cli, name) if case % 2 else 0
        delay = _delay(rng, measured)
        crashes += _run_and_kill(command, delay, stdin)
        where = f"seed {SEED}, put case {case} ({name}), kill after {delay:.3f}s"
        present = name in _names(cli)
        _assert_whole(cli, expected | ({name} if present else set()), where)
        # One audit entry exactly when the put committed: a new name is then
        # present, an updated one is one version further.
        committed = _changes(cli, name) - before_changes
        assert committed in (0, 1), f"{where}: {committed} audit entries for one put"
        if case % 2 == 0:
            assert committed == present, f"{where}: present {present}, {committed} entries"
        else:
            assert _version(cli, name) == version_before + committed, where

        rerun = cli(*command[3:], stdin=stdin.decode())
        assert rerun.code == 0, f"{where}: re-run failed: {rerun.err}"
        expected.add(name)
        _assert_whole(cli, expected, where + ", after the re-run")
        assert _changes(cli, name) - before_changes == committed + 1, where
    record_property("cases", RUNS)
    record_property("kills", crashes)  # kills that landed mid-command
    assert crashes >= 1, f"no kill landed mid-command; seed {SEED}"


def test_keys_rotate_killed_at_random_points(
    data_dir: Path, tmp_path: Path, record_property: RecordProperty
) -> None:
    rng = random.Random(SEED + 1)
    total = 300
    insert_credentials(data_dir, total)
    expected = {f"ds-{i:05d}" for i in range(total)}
    key_file = private_file(tmp_path / "rk", RECOVERY_KEY)
    cli = GwvaultCli(data_dir)
    command: list[str | Path] = [GWVAULT, "--data-dir", data_dir, "keys", "rotate",
                                 "--recovery-key-file", key_file, "--batch-size", "20"]  # fmt: skip
    measured = _seconds(command)
    crashes = 0
    for case in range(RUNS):
        delay = _delay(rng, measured)
        crashes += _run_and_kill(command, delay)
        where = f"seed {SEED + 1}, rotate case {case}, kill after {delay:.3f}s"
        _assert_whole(cli, expected, where)
        assert verify_all(data_dir) == (total, []), where
        rerun = cli(*command[3:])
        assert rerun.code == 0, f"{where}: re-run failed: {rerun.err}"
        state = key_state(data_dir)
        assert list(state["master_keys"].values()) == ["current"], f"{where}: {state}"
        assert state["credentials"] == {next(iter(state["master_keys"])): total}, where
        _assert_whole(cli, expected, where + ", after the re-run")
    record_property("cases", RUNS)
    record_property("kills", crashes)  # kills that landed mid-command
    assert crashes >= 1, f"no kill landed mid-command; seed {SEED + 1}"


def _key_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.suffix == ".key")


def test_keystore_migrate_killed_at_random_points(
    data_dir: Path, tmp_path: Path, record_property: RecordProperty
) -> None:
    """file -> a new file keystore, unlocked with the recovery key (the repair path)."""
    rng = random.Random(SEED + 2)
    insert_credentials(data_dir, 50)
    expected = {f"ds-{i:05d}" for i in range(50)}
    key_file = private_file(tmp_path / "rk", RECOVERY_KEY)
    cli = GwvaultCli(data_dir)
    command: list[str | Path] = [GWVAULT, "--data-dir", data_dir, "keystore", "migrate",
                                 "--to", "file", "--recovery-key-file", key_file]  # fmt: skip
    measured = _seconds(command)
    crashes = 0
    leftovers = 0
    for case in range(RUNS):
        delay = _delay(rng, measured)
        crashes += _run_and_kill(command, delay)
        where = f"seed {SEED + 2}, migrate case {case}, kill after {delay:.3f}s"
        _assert_whole(cli, expected, where)
        show = cli("keystore", "show", "--json")
        assert show.code == 0 and show.json()["keystore"] == "file", where
        leftovers = max(leftovers, len(_key_files(data_dir)) - 1)
        rerun = cli(*command[3:])
        assert rerun.code == 0, f"{where}: re-run failed: {rerun.err}"
        _assert_whole(cli, expected, where + ", after the re-run")
    record_property("cases", RUNS)
    record_property("kills", crashes)  # kills that landed mid-command
    # Key files an interrupted migration left beside the bound one (not an
    # integrity failure: none of them wraps a key the vault uses).
    record_property("orphan_key_files", leftovers)
    assert crashes >= 1, f"no kill landed mid-command; seed {SEED + 2}"


def test_restore_killed_at_random_points(
    data_dir: Path, tmp_path: Path, record_property: RecordProperty
) -> None:
    rng = random.Random(SEED + 3)
    insert_credentials(data_dir, 20)
    expected = {f"ds-{i:05d}" for i in range(20)}
    key_file = private_file(tmp_path / "rk", RECOVERY_KEY)
    old = GwvaultCli(data_dir)
    bundle = tmp_path / "b.gwb"
    assert old("recovery", "export", "--out", bundle, "--recovery-key-file", key_file).code == 0

    def restore(target: Path) -> list[str | Path]:
        return [GWVAULT, "--data-dir", target, "restore", "--bundle", bundle,
                "--recovery-key-file", key_file]  # fmt: skip

    measured = _seconds(restore(tmp_path / "measure"))
    crashes = 0
    partial: list[str] = []
    for case in range(RUNS):
        target = tmp_path / f"restored-{case:03d}"
        delay = _delay(rng, measured)
        crashes += _run_and_kill(restore(target), delay)
        where = f"seed {SEED + 3}, restore case {case}, kill after {delay:.3f}s"
        cli = GwvaultCli(target)
        left = sorted(p.name for p in target.iterdir()) if target.exists() else []
        if DataDir(target).marker.exists():  # killed mid-restore: says so, and starts afresh
            status = cli("status")
            assert status.code != 0 and "interrupted" in status.err, f"{where}: {status.err}"
            rerun = cli(*restore(target)[3:])
            assert rerun.code == 0, f"{where}: re-run after an interrupted restore: {rerun.err}"
            _assert_whole(cli, expected, where + ", after the re-run")
        elif DataDir(target).has_vault():
            status = cli("status")
            if status.code != 0:  # neither nothing nor a whole vault
                partial.append(f"{where}: left {left}: {status.err.strip()}")
                continue
            _assert_whole(cli, expected, where)
            again = cli(*restore(target)[3:])
            assert again.code != 0 and "already holds a vault" in again.err, where
        else:
            assert left == [], f"{where}: no vault, but the directory holds {left}"
            rerun = cli(*restore(target)[3:])
            assert rerun.code == 0, f"{where}: re-run failed: {rerun.err}"
            _assert_whole(cli, expected, where + ", after the re-run")
        shutil.rmtree(target)
    record_property("cases", RUNS)
    record_property("kills", crashes)  # kills that landed mid-command
    assert not partial, "a killed restore left a vault that neither opens nor restores:\n" + (
        "\n".join(partial)
    )
    assert crashes >= 1, f"no kill landed mid-command; seed {SEED + 3}"
