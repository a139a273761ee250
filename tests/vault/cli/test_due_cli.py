"""``credentials put --expires/--rotate-every/--contact``, ``credentials set`` and
``credentials due``, run in-process (``vault.cli.main.main``) for speed: the
installed command's contract (one line, exit 2) is ``test_cli_contract``'s."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from tests.vault.cli.gwvault_process import private_file
from vault.cli.main import main

PUT = ["credentials", "put", "sales", "--type", "mysql", "--server", "db", "--username", "u"]


def day(offset: int) -> str:
    return (
        (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=offset)).date().isoformat()
    )


def gwvault(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def put(data_dir: Path, tmp_path: Path) -> list[str]:
    return [*PUT, "--secret-file", str(private_file(tmp_path / "secret", "pw"))]


def test_put_set_and_due_carry_the_owners_dates(
    data_dir: Path, capsys: pytest.CaptureFixture[str], put: list[str]
) -> None:
    run = gwvault(data_dir, capsys, *put, "--expires", day(10), "--contact", "DBA@Example.com")
    assert run[0] == 0, run[2]
    shown = json.loads(gwvault(data_dir, capsys, "credentials", "show", "sales", "--json")[1])
    assert shown["expires_at"] == f"{day(10)}T00:00:00+00:00"
    assert (shown["contact"], shown["rotate_every"]) == ("DBA@example.com", None)

    code, out, _ = gwvault(data_dir, capsys, "credentials", "due")
    assert code == 0 and out.startswith(f"sales  expires        {day(10)}T00:00:00+00:00  in ")
    assert gwvault(data_dir, capsys, "credentials", "due", "--within", "7d")[1] == (
        "nothing due within 7d\n"
    )

    # The dates change without the secret; none clears one, the rest are kept.
    code, out, _ = gwvault(
        data_dir, capsys, "credentials", "set", "sales", "--rotate-every", "1d", "--expires", "none"
    )
    assert code == 0
    assert out == "sales: expires never, rotate every 1d, contact DBA@example.com\n"
    [due] = json.loads(gwvault(data_dir, capsys, "credentials", "due", "--json")[1])
    assert (due["name"], due["what"], due["days_left"], due["overdue"]) == (
        "sales", "rotation", 0, False,
    )  # fmt: skip
    listed = json.loads(gwvault(data_dir, capsys, "credentials", "list", "--json")[1])
    assert listed[0]["rotate_every"] == 86400


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--expires", "2027-03-31T10:00"], "no offset"),
        (["--expires", "31/03/2027"], "an expiry is"),
        (["--rotate-every", "6m"], "months"),
        (["--contact", "dba@example.com\nBcc: x@example.com"], "e-mail address"),
    ],
)
def test_a_bad_date_is_refused_before_anything_is_stored(
    data_dir: Path, capsys: pytest.CaptureFixture[str], put: list[str], args: list[str], says: str
) -> None:
    code, _, err = gwvault(data_dir, capsys, *put, *args)
    assert code == 2 and says in err and err.count("\n") == 1
    assert gwvault(data_dir, capsys, "credentials", "list")[1] == "no credentials\n"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["set", "sales"], 2, "give --expires"),
        (["set", "sales", "--contact", "x"], 2, "e-mail address"),
        (["set", "nobody", "--contact", "none"], 1, "no credential named"),
        (["due", "--within", "1y"], 2, "window"),
        (["due", "--within", "3651d"], 2, "10 years"),
    ],
)
def test_set_and_due_refuse_bad_input_with_one_line(  # noqa: PLR0917 - pytest fixtures
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    put: list[str],
    args: list[str],
    code: int,
    says: str,
) -> None:
    assert gwvault(data_dir, capsys, *put)[0] == 0
    run = gwvault(data_dir, capsys, "credentials", *args)
    assert run[0] == code and says in run[2], run
