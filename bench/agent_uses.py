"""``python -m bench.agent_uses``: durable ``use_credential`` calls per second.

One long-lived ``GatewayAgent`` on a fresh vault (file keystore) on the disk
under ``--dir``: each call reads and checks the stored credential, opens it,
and returns once its ``credential.used`` entry is committed (synchronous=FULL,
so the log is synced); callers at once share commits (group commit).  For
each thread count the figure is the median of ``--rounds`` bursts.  The goal
of issue 15 is >= 5,000/s with group commit on the 2-core benchmark machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from agent_keys.secret import Secret
from vault.agent import GatewayAgent
from vault.context import RequestContext
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway

RECOVERY_KEY = "orbit walnut trellis quasar lantern 42"
DATASOURCE = "sales"


def uses_per_second(agent: GatewayAgent, threads: int, seconds: float) -> float:
    """Calls completed by ``threads`` callers in ``seconds``, per second."""
    deadline = time.perf_counter() + seconds
    done = [0] * threads

    def caller(index: int) -> None:
        while time.perf_counter() < deadline:
            login = agent.use_credential(DATASOURCE, job_id=f"bench-{index}")
            if login.secret is None:
                raise RuntimeError("the credential came back without its secret")
            done[index] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_uses", description=__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=1.0, help="per burst")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where the vault is made")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gwvault-agent-", dir=args.dir) as tmp:
        path = Path(tmp) / "vault"
        setup = RequestContext(actor="bench", channel="cli")
        recovery = Secret.from_text(RECOVERY_KEY)
        with Gateway.initialize(path, "bench", "ec-p256", recovery, setup) as gateway:
            payload = CredentialPayload("basic", "alice", Secret.from_text("bench-pw"))
            CredentialService(gateway).put(DATASOURCE, DataSource("mysql", "db"), payload)
        with GatewayAgent(path) as agent:
            uses_per_second(agent, 1, 0.2)  # warm: connection, keys, facts
            rounds: dict[int, list[float]] = {n: [] for n in args.threads}
            for _ in range(args.rounds):  # interleaved, so drift hits every count alike
                for threads in args.threads:
                    rounds[threads].append(uses_per_second(agent, threads, args.seconds))
    for threads, figures in rounds.items():
        shown = ", ".join(f"{f:.0f}" for f in figures)
        print(f"{threads:>3} threads: {statistics.median(figures):8.0f} uses/s  ({shown})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
