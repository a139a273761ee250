"""Measuring fairly on a shared, noisy machine: interleaved rounds, medians, ratios.

Peers measured side by side are run round-robin, one short burst each per round,
so drift (another tenant, thermal, the GC) hits them alike; a figure is the
median of the rounds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Measurement:
    """One figure: ``value`` is the median of ``rounds`` (higher is better, unless
    ``lower_is_better``)."""

    group: str  # e.g. "seal-p256", "https", "rotate"
    name: str  # e.g. "gwvault", "jwcrypto", "tink-ecies-p256"
    unit: str  # "ops/s", "req/s", "s", "ms", "MiB"
    value: float
    rounds: tuple[float, ...] = ()
    lower_is_better: bool = False
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)  # e.g. p50/p99 of a load test

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def interleaved_throughput(
    cases: dict[str, Callable[[], object]],
    *,
    rounds: int,
    seconds_per_burst: float,
    group: str,
    warmup: int = 20,
) -> list[Measurement]:
    """Operations per second of each case, bursts interleaved across ``rounds``."""
    for call in cases.values():
        for _ in range(warmup):
            call()
    per_round: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, call in cases.items():
            count, start = 0, time.perf_counter()
            deadline = start + seconds_per_burst
            while True:
                call()
                count += 1
                now = time.perf_counter()
                if now >= deadline:
                    break
            per_round[name].append(count / (now - start))
    return [
        Measurement(group, name, "ops/s", statistics.median(values), tuple(values))
        for name, values in per_round.items()
    ]


def timed(
    group: str, name: str, run: Callable[[], object], *, repeats: int, note: str = ""
) -> Measurement:
    """Wall seconds of ``run`` (median of ``repeats``); lower is better."""
    values = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        values.append(time.perf_counter() - start)
    return Measurement(
        group, name, "s", statistics.median(values), tuple(values), lower_is_better=True, note=note
    )
