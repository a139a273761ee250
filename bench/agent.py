"""The gateway agent's ``use_credential`` rate: one long-lived agent, 1 and 8 job threads.

Each call returns a secret only after its ``credential.used`` entry is
committed, so the rate is of durable uses.  One ``GatewayAgent`` serves all
threads, as in a gateway process running several jobs at once; the thread
counts are interleaved round by round.  A call that raises is counted as an
error, not as a use.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.bursts import Burst, Call, threaded_burst
from bench.harness import Measurement

GROUP = "agent-use-credential"
THREAD_COUNTS = (1, 8)
CREDENTIALS = 50
CREDENTIAL_PREFIX = "agent"
WARMUP_CALLS = 20


@dataclass(frozen=True)
class AgentShape:
    seconds: float
    rounds: int


def name(threads: int) -> str:
    return f"{threads} thread" + ("s" if threads > 1 else "")


def agent_throughput(data_dir: Path, shape: AgentShape) -> list[Measurement]:
    from tests.vault.keys.rotation_helpers import insert_credentials

    insert_credentials(data_dir, CREDENTIALS, prefix=CREDENTIAL_PREFIX)
    rounds: dict[int, list[Burst]] = {n: [] for n in THREAD_COUNTS}
    with agent_calls(data_dir, "bench") as use:
        for _ in range(shape.rounds):
            for threads in THREAD_COUNTS:
                rounds[threads].append(threaded_burst(use, threads, shape.seconds))
    return [_measurement(threads, runs, shape) for threads, runs in rounds.items()]


@contextlib.contextmanager
def agent_calls(data_dir: Path, tag: str) -> Iterator[Call]:
    """A long-lived ``GatewayAgent`` on ``data_dir`` (its credentials put there before),
    warmed up; each call uses one of them for a job named after ``tag``."""
    from vault.agent import GatewayAgent

    with GatewayAgent(data_dir, "bench") as agent:
        for i in range(WARMUP_CALLS):
            agent.use_credential(_credential(i), job_id=f"warmup-{tag}-{i}")
        yield lambda n: agent.use_credential(_credential(n), job_id=f"{tag}-{n}")


def _credential(i: int) -> str:
    return f"{CREDENTIAL_PREFIX}-{i % CREDENTIALS:05d}"  # the names insert_credentials gives


def _measurement(threads: int, runs: list[Burst], shape: AgentShape) -> Measurement:
    rates = tuple(burst.rate for burst in runs)
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
        extra={"errors": float(sum(burst.errors for burst in runs)), "threads": float(threads)},
    )
