"""The gateway agent's ``use_credential`` rate: one long-lived agent, 1 and 8 job threads.

Each call returns a secret only after its ``credential.used`` entry is
committed, so the rate is of durable uses.  One ``GatewayAgent`` serves all
threads, as in a gateway process running several jobs at once; the thread
counts are interleaved round by round.  A call that raises is counted as an
error, not as a use.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import Measurement

GROUP = "agent-use-credential"
THREAD_COUNTS = (1, 8)
CREDENTIALS = 50
WARMUP_CALLS = 20


@dataclass(frozen=True)
class AgentShape:
    seconds: float
    rounds: int


def name(threads: int) -> str:
    return f"{threads} thread" + ("s" if threads > 1 else "")


def agent_throughput(data_dir: Path, shape: AgentShape) -> list[Measurement]:
    from tests.vault.keys.rotation_helpers import insert_credentials
    from vault.agent import GatewayAgent

    insert_credentials(data_dir, CREDENTIALS, prefix="agent")
    agent = GatewayAgent(data_dir, "bench")
    try:
        for i in range(WARMUP_CALLS):
            agent.use_credential(_credential(i), job_id=f"warmup-{i}")
        rounds: dict[int, list[tuple[float, int]]] = {n: [] for n in THREAD_COUNTS}
        for _ in range(shape.rounds):
            for threads in THREAD_COUNTS:
                rounds[threads].append(_burst(agent, threads, shape.seconds))
    finally:
        close = getattr(agent, "close", None)  # a long-lived agent may hold a connection
        if callable(close):
            close()
    return [_measurement(threads, runs, shape) for threads, runs in rounds.items()]


def _credential(i: int) -> str:
    return f"agent-{i % CREDENTIALS:05d}"  # the names insert_credentials gives


def _burst(agent: Any, threads: int, seconds: float) -> tuple[float, int]:
    """(uses per second, errors) of ``threads`` threads calling for ``seconds``."""
    counts = [0] * threads
    errors = [0] * threads
    start = time.monotonic()
    until = start + seconds

    def job(slot: int) -> None:
        i = 0
        while time.monotonic() < until:
            try:
                agent.use_credential(_credential(slot + i), job_id=f"bench-{slot}-{i}")
                counts[slot] += 1
            except Exception:  # any failure is an error of the figure, not a use
                errors[slot] += 1
            i += threads

    workers = [threading.Thread(target=job, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    return sum(counts) / elapsed, sum(errors)


def _measurement(threads: int, runs: list[tuple[float, int]], shape: AgentShape) -> Measurement:
    rates = tuple(rate for rate, _ in runs)
    return Measurement(
        GROUP,
        name(threads),
        "uses/s",
        statistics.median(rates),
        rates,
        note=(
            f"GatewayAgent.use_credential in process, one agent shared by {threads} thread(s),"
            f" {shape.seconds:g} s bursts, median of {len(runs)}; each use's audit entry"
            " committed before the secret is returned"
        ),
        extra={"errors": float(sum(e for _, e in runs)), "threads": float(threads)},
    )
