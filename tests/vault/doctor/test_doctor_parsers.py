"""The doctor's readers of kernel text and its expiry rule, with hostile input."""

from __future__ import annotations

import datetime

import pytest

from vault.doctor.server_process import parse_status
from vault.doctor.system import SwapArea, parse_core_limit, parse_swaps
from vault.doctor.vault_state import expiry_check

HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"


@pytest.mark.parametrize(
    ("text", "areas"),
    [
        ("", []),
        (HEADER, []),
        (HEADER + "/dev/dm-1 partition 8388604 0 -2\n", [SwapArea("/dev/dm-1", "partition")]),
        (HEADER + "/swap\\040file file 1024 0 -3\n", [SwapArea("/swap file", "file")]),
        (HEADER + "garbage\n\x00\x1b[2J\nrelative file 1 0 0\n/only-one-field\n", []),
        ("/dev/sda2 partition 1 0 0\n", []),  # no header: the first line is one
    ],
)
def test_swap_lines(text: str, areas: list[SwapArea]) -> None:
    assert parse_swaps(text) == areas


@pytest.mark.parametrize(
    ("text", "limits"),
    [
        ("Max core file size        0                    unlimited            bytes\n", (0, None)),
        ("Max core file size        unlimited  unlimited  bytes\n", (None, None)),
        ("Max core file size        4096       8192       bytes\n", (4096, 8192)),
        ("Max core file size        lots       more       bytes\n", None),
        ("Max core file size\n", None),
        ("Max open files 1024 4096 files\n", None),
        ("", None),
    ],
)
def test_core_limit_lines(text: str, limits: tuple[int | None, int | None] | None) -> None:
    assert parse_core_limit(text) == limits


def test_a_certificate_warns_within_30_days_and_fails_once_expired() -> None:
    now = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
    days = datetime.timedelta(days=1)
    assert expiry_check("c", now + 31 * days, now, "fix").status == "ok"
    assert expiry_check("c", now + 29 * days, now, "fix").status == "warn"
    expired = expiry_check("c", now - days, now, "fix")
    assert expired.status == "fail" and expired.fix == "fix" and "expired" in expired.summary


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Name:\tgwvault\nUid:\t998\t998\t998\t998\nVmLck:\t   51200 kB\n", (51200, 998)),
        ("Uid:\t0\t0\t0\t0\nVmLck:\t       0 kB\n", (0, 0)),
        ("VmLck:\tlots kB\nUid:\n", (None, None)),
        ("", (None, None)),
    ],
)
def test_status_lines(text: str, found: tuple[int | None, int | None]) -> None:
    assert parse_status(text) == found
