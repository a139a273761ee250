"""``gwvault doctor`` as the command runs it (in this process), on real vaults:
what it finds, the exit code, one line of what to do per problem."""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_keys.secret import Secret
from tests.audit_forgery import append_forged_entry
from tests.conftest import make_context
from vault.cli.main import main
from vault.doctor.checks import DoctorSubject
from vault.doctor.run import CHECKS
from vault.doctor.server_process import hardening_check
from vault.doctor.system import core_dump_check
from vault.gateway import Gateway
from vault.keys.keystore_binding import no_pin
from vault.keys.relocation import export_bundle
from vault.served_address import RunFile, ServedAddress


def doctor(data_dir: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    code = main(["--data-dir", str(data_dir), "doctor", *flags])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and err == ""
    return code, out


def findings(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
    code, out = doctor(data_dir, capsys, "--json")
    report = json.loads(out)
    assert report["ok"] is (code == 0)
    assert [check["name"] for check in report["checks"]] == [name for name, _ in CHECKS]
    return {check["name"]: check for check in report["checks"]}


def test_a_fresh_vault_passes_and_the_missing_backup_is_a_warning(
    data_dir: Path, capsys: pytest.CaptureFixture[str], recovery_key: Secret
) -> None:
    code, out = doctor(data_dir, capsys)
    assert code == 0
    lines = out.splitlines()
    assert len([line for line in lines if not line.startswith("      fix: ")]) == len(CHECKS)
    backup = lines.index(next(line for line in lines if line.startswith("WARN  key backup: ")))
    assert lines[backup + 1] == (
        "      fix: gwvault recovery export --out FILE (or: gwvault cert export --out FILE.p12)"
    )
    found = findings(data_dir, capsys)
    for name in ("data dir", "store", "store clock", "audit trail", "TLS certificate",
                 "gateway certificate"):  # fmt: skip
        assert found[name]["status"] == "ok", found[name]

    with Gateway.open(data_dir, make_context()) as gateway:
        export_bundle(gateway, recovery_key)
    assert findings(data_dir, capsys)["key backup"]["status"] == "ok"


def test_files_others_may_read_or_a_planted_link_fail_with_the_command_to_run(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (data_dir / "keystore.json").chmod(0o644)
    (data_dir / "planted").symlink_to("/etc/passwd")
    code, out = doctor(data_dir, capsys)
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("FAIL  data dir: "))
    assert "keystore.json is 0644" in line and "planted is a symlink" in line
    fix = out.splitlines()[out.splitlines().index(line) + 1]
    assert f"chmod 600 {data_dir / 'keystore.json'}" in fix and f"rm {data_dir / 'planted'}" in fix


def test_a_damaged_database_fails_the_store_check_on_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = data_dir / "vault.db"
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'audit_events_by_action'"
        ).fetchone()
    with db_path.open("r+b") as f:
        f.seek(4096 * (page - 1) + 8)  # the index page's cell pointers
        f.write(b"\xff" * 64)
    code, out = doctor(data_dir, capsys)
    assert code == 1
    store = [line for line in out.splitlines() if line.startswith("FAIL  store: ")]
    assert len(store) == 1 and "is damaged" in store[0]
    assert "gwvault restore" in out


def test_without_a_vault_the_system_checks_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = findings(tmp_path / "none", capsys)
    assert found["data dir"]["status"] == "fail" and found["store"]["status"] == "fail"
    assert "did not open" in found["store"]["summary"]
    for name in ("swap", "core dumps", "clock sync"):
        assert found[name]["status"] in ("ok", "warn")
        assert not found[name]["summary"].startswith("not checked")
    for name in ("audit trail", "TLS certificate", "gateway certificate", "key backup"):
        assert found[name]["summary"].startswith("not checked: "), found[name]


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_a_data_dir_that_is_a_file_or_a_link_fails_without_a_traceback(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    given = tmp_path / "given"
    if kind == "file":
        given.write_text("not a vault")
    else:
        given.symlink_to(data_dir)
    found = findings(given, capsys)
    assert (
        found["data dir"]["status"] == "fail" and "not a directory" in found["data dir"]["summary"]
    )


def test_another_users_vault_is_not_opened(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving the data dir to another user needs root")
    before = sorted(p.name for p in data_dir.iterdir())
    os.chown(data_dir, 65534, -1)
    found = findings(data_dir, capsys)
    assert (
        found["store"]["status"] == "fail"
        and "run the doctor as its owner" in (found["store"]["summary"])
    )
    assert "belongs to uid 65534" in found["data dir"]["summary"]
    assert sorted(p.name for p in data_dir.iterdir()) == before  # no file made as root


def test_an_entry_appended_without_the_audit_key_fails_the_audit_check(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        gateway_id = gateway.gateway_id
    append_forged_entry(data_dir / "vault.db", gateway_id, "recovery.exported", None)
    found = findings(data_dir, capsys)
    assert found["audit trail"]["status"] == "fail"
    assert "gwvault audit verify" in found["audit trail"]["fix"]
    assert found["key backup"]["status"] == "warn"  # the forged backup is no backup


@pytest.fixture
def own_core_limit() -> Iterator[None]:
    saved = resource.getrlimit(resource.RLIMIT_CORE)
    yield
    resource.setrlimit(resource.RLIMIT_CORE, saved)


def test_core_dumps_and_hardening_of_this_process_and_of_a_running_server(
    data_dir: Path, own_core_limit: None
) -> None:
    subject = DoctorSubject(data_dir, no_pin, lambda path, pin: Gateway.open(path, make_context()))
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    assert core_dump_check(subject).status == "ok"
    if hard == 0:
        pytest.skip("core dumps are off for good here: no limit to raise")
    resource.setrlimit(resource.RLIMIT_CORE, (min(1 << 20, hard) if hard > 0 else 1 << 20, hard))
    found = core_dump_check(subject)
    assert found.status == "warn" and "this shell" in found.summary and "LimitCORE=0" in found.fix

    # A "server" (a real process) whose limits the run file leads to.
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    sleeper = shutil.which("sleep") or "/bin/sleep"
    server = subprocess.Popen(
        [sleeper, "60"],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (hard, hard)),  # noqa: PLW1509
    )
    try:
        with RunFile(data_dir, ServedAddress("127.0.0.1", 8050, server.pid)):
            found = core_dump_check(subject)
        assert found.status == "warn" and f"the server (pid {server.pid})" in found.summary
        # It locked no memory: the hardening check says so and how to fix it.
        with RunFile(data_dir, ServedAddress("127.0.0.1", 8050, server.pid)):
            hardening = hardening_check(subject)
        assert hardening.status == "warn" and "memory NOT locked" in hardening.summary
        assert "LimitMEMLOCK=infinity" in hardening.fix
    finally:
        server.kill()
        server.wait()
    assert hardening_check(subject).summary.startswith("no server is running")
