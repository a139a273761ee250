"""The cluster benchmark's harness: bursts in several processes, and ratios within a round.

The processes are real (spawned, as the benchmark spawns one per member); the
work they do here is trivial, so the test is about the harness, not a vault.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.__main__ import render
from bench.bursts import Call, bursts_at_once
from bench.cluster import Layout, Round, layout_measurements
from bench.store_waits import kind_of_wait


@contextlib.contextmanager
def _every_third_call_fails(data_dir: Path, tag: str) -> Iterator[Call]:
    def call(n: int) -> None:
        if n % 3 == 0:
            raise ValueError(f"call {n} of {tag} on {data_dir}")

    yield call


@contextlib.contextmanager
def _cannot_open(data_dir: Path, tag: str) -> Iterator[Call]:
    raise FileNotFoundError(f"no vault in {data_dir}")
    yield lambda n: None  # never reached: the vault did not open


def test_each_process_makes_a_burst_and_a_call_that_raises_is_an_error_not_a_call(
    tmp_path: Path,
) -> None:
    bursts = bursts_at_once(_every_third_call_fails, [(tmp_path, 2), (tmp_path, 1)], 0.3, "t")
    assert len(bursts) == 2
    for burst in bursts:
        assert burst.calls > 0
        assert burst.errors > 0
        assert burst.errors <= burst.calls  # one in three fails, give or take the last
        assert burst.seconds >= 0.3
        assert burst.cpu_seconds > 0


def test_a_process_that_cannot_start_fails_the_run_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="did not get ready") as failed:
        bursts_at_once(_cannot_open, [(tmp_path, 1), (tmp_path, 1)], 0.3, "t")
    assert f"no vault in {tmp_path}" in str(failed.value)


def test_a_ratio_is_the_median_of_each_rounds_ratio_to_the_peer_of_that_round() -> None:
    layouts = [
        Layout("one", (Path("a"),)),
        Layout("three", (Path("a"), Path("b"), Path("c")), {"vs_one": "one"}),
    ]
    runs = {
        "one": [Round(100.0, 0, {"cores": 1.0}), Round(10.0, 1, {"cores": 2.0}),
                Round(200.0, 0, {"cores": 3.0})],
        "three": [Round(90.0, 0, {"cores": 1.5}), Round(9.0, 0, {"cores": 1.5}),
                  Round(20.0, 2, {"cores": 1.5})],
    }  # fmt: skip
    one, three = layout_measurements("g", "ops/s", runs, layouts, "note")
    assert (one.value, one.rounds) == (100.0, (100.0, 10.0, 200.0))
    assert one.extra["errors"] == 1.0
    assert one.extra["cores"] == 2.0
    assert "vs_one" not in one.extra
    # Rounds 0.9, 0.9 and 0.1 of the peer: 0.9, where the ratio of medians says 0.2.
    assert three.extra["vs_one"] == pytest.approx(0.9)
    assert three.extra["errors"] == 2.0
    assert three.extra["processes"] == 3.0
    report = render([one, three], [], quick=True)
    assert "| g | three | one | 0.90 x |" in report.split("## Ratios", 1)[1]


def test_a_session_waiting_on_the_write_lock_is_told_from_one_waiting_for_its_member() -> None:
    assert kind_of_wait("active", "Lock", "transactionid") == "pg_lock_wait"
    assert kind_of_wait("active", "Lock", "tuple") == "pg_lock_wait"
    assert kind_of_wait("active", "IO", "WALSync") == "pg_wal_sync"
    assert kind_of_wait("idle in transaction", "Client", "ClientRead") == "pg_client_in_transaction"
    assert kind_of_wait("active", None, None) == "pg_running"
    assert kind_of_wait("idle", "Client", "ClientRead") == "pg_idle"
