"""``gwvault diagnostics --out FILE.zip``: the members, the file's mode, and
every hostile ``--out`` refused with one line and nothing written."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from vault.access.row_seal import SEALED_SETTINGS
from vault.cli.main import main
from vault.diagnostics.bundle import MEMBERS
from vault.diagnostics.members import PLAIN_SETTINGS, POLICY_SETTINGS
from vault.doctor.run import CHECKS


def diagnostics(
    data_dir: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), "diagnostics", "--out", str(out)])
    got, err = capsys.readouterr()
    assert "Traceback" not in got + err
    if code != 0:
        assert err.count("\n") == 1 and err.startswith("gwvault: error: "), err
    return code, got, err


def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as opened:
        return {Path(name).name: opened.read(name) for name in opened.namelist()}


def test_the_bundle_holds_its_members_and_is_private(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "support.zip"
    code, got, _ = diagnostics(data_dir, out, capsys)
    assert code == 0 and str(out) in got
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    found = members(out)
    assert tuple(found) == MEMBERS
    doctor = json.loads(found["doctor.json"])
    assert [check["name"] for check in doctor["checks"]] == [name for name, _ in CHECKS]
    status = json.loads(found["status.json"])
    assert status["backup"]["needed"] is True and status["name"]
    assert set(json.loads(found["settings.json"])) == {*PLAIN_SETTINGS, *POLICY_SETTINGS}
    assert set(POLICY_SETTINGS) <= SEALED_SETTINGS  # read with their seals checked
    assert json.loads(found["audit-verify.json"])["ok"] is True
    assert json.loads(found["failed-tests.json"]) == []
    assert "store" in json.loads(found["versions.json"])
    assert found["server-log.txt"].endswith(b"\n")


def test_without_a_vault_the_bundle_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "support.zip"
    assert diagnostics(tmp_path / "none", out, capsys)[0] == 0
    found = members(out)
    assert "unavailable" in json.loads(found["status.json"])
    assert json.loads(found["doctor.json"])["ok"] is False


def _existing_file(path: Path) -> None:
    path.write_text("keep me")


def _link_to_nowhere(path: Path) -> None:
    path.symlink_to(path.parent / "target-not-made")


def _link_to_a_file(path: Path) -> None:
    (path.parent / "target").write_text("keep me")
    path.symlink_to(path.parent / "target")


def _fifo(path: Path) -> None:
    os.mkfifo(path)  # opening it to write would block: it must never be opened


def _directory(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize(
    "make", [_existing_file, _link_to_nowhere, _link_to_a_file, _fifo, _directory]
)
def test_an_existing_out_path_of_any_kind_is_refused(
    make: Callable[[Path], None], data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "support.zip"
    out.parent.mkdir()
    make(out)
    before = sorted((p.name, p.lstat().st_mode, p.lstat().st_size) for p in out.parent.iterdir())
    code, _, err = diagnostics(data_dir, out, capsys)
    assert code == 2 and "exists; not overwriting it" in err
    after = sorted((p.name, p.lstat().st_mode, p.lstat().st_size) for p in out.parent.iterdir())
    assert after == before


def test_an_out_path_in_a_missing_directory_is_refused(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = diagnostics(data_dir, tmp_path / "missing" / "support.zip", capsys)
    assert code == 2 and "its directory does not exist" in err
    assert not (tmp_path / "missing").exists()
