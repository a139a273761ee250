"""``gwvault metrics show|token|revoke|set``, run in this process (each start of
``gwvault`` would cost a quarter second)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.conftest import make_context
from vault.cli.main import main
from vault.gateway import Gateway
from vault.metrics.settings import METRICS_TOKEN_PREFIX, load_metrics_settings


def _run(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main(["--data-dir", str(data_dir), "metrics", *map(str, args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if code != 0:
        assert err.count("\n") == 1 and err.startswith("gwvault"), err
        return code, err
    return code, out


def _entries(data_dir: Path) -> int:
    with Gateway.open(data_dir, make_context()) as gateway:
        return len(gateway.store.find_audit("action = ?", ["metrics.changed"], limit=100))


def test_the_token_is_shown_once_or_written_to_a_new_private_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(data_dir, capsys, "token")
    shown = out.splitlines()[-1]
    assert code == 0 and shown.startswith(METRICS_TOKEN_PREFIX)
    token_file = tmp_path / "scrape.token"
    assert _run(data_dir, capsys, "token", "--out", token_file)[0] == 0
    written = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and written not in out
    with Gateway.open(data_dir, make_context()) as gateway:
        settings = load_metrics_settings(gateway)
    assert settings.accepts(written) and not settings.accepts(shown)

    # An existing file: one error, no new token, the file as it was.
    code, err = _run(data_dir, capsys, "token", "--out", token_file)
    assert code != 0 and "exists" in err
    assert token_file.read_text().strip() == written and _entries(data_dir) == 2
    assert json.loads(_run(data_dir, capsys, "show", "--json")[1]) == {
        "scrape_token": True, "per_credential": False,
    }  # fmt: skip
    assert _run(data_dir, capsys, "revoke")[0] == 0
    assert _run(data_dir, capsys, "show")[1].split()[:2] == ["scrape_token", "off"]


def test_per_credential_series_are_switched_on_and_off(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(data_dir, capsys, "set", "--per-credential", "on")[0] == 0
    assert json.loads(_run(data_dir, capsys, "show", "--json")[1])["per_credential"] is True
    for typed in ("yes", "ON", ""):
        code, err = _run(data_dir, capsys, "set", "--per-credential", typed)
        assert code != 0 and "on or off" in err
    assert _run(data_dir, capsys, "set", "--per-credential", "off")[0] == 0
    assert _entries(data_dir) == 2  # the refused ones changed nothing
