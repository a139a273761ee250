"""System benchmarks: the real CLI and HTTPS server, as an operator runs them.

``run(quick, cases)`` measures, each case on its own fresh vault in a
temporary directory:

* ``cold-start``: ``gwvault --help`` and ``gwvault status`` as fresh processes,
  against ``python -c pass`` as the floor;
* ``https``: encrypt-value under wrk at 8, 32 and 128 keep-alive connections,
  against a hello-world on the same server stack, and the server's memory
  (``bench.throughput``);
* ``credentials``: at 100k credentials, the list (API and page) and the status
  (API and overview page) per request (``bench.at_scale``), then ``gwvault keys
  rotate`` on copies of that vault;
* ``audit``: at 1M audit entries, ``gwvault audit verify``, ``AuditLog.verify()``
  in process, then the ``/audit`` page and ``/api/v1/audit/verify`` per request;
* ``agent``: ``GatewayAgent.use_credential`` with 1 and 8 threads (``bench.agent``);
* ``cluster``: encrypt-value, the agent's uses and credential puts with 1, 2 and 3
  members on one PostgreSQL, against SQLite (``bench.cluster``).

Quick mode (a smoke run of about three minutes) uses smaller counts and short
windows; its figures are not for quoting.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from bench.agent import AgentShape, agent_throughput
from bench.at_scale import AUDIT_PAGES, CREDENTIAL_PAGES, PageShape, measure_pages
from bench.cluster import ClusterShape, cluster
from bench.harness import Measurement, timed
from bench.served import GWVAULT, PYTHON, Vault, fresh_vault, gwvault
from bench.throughput import LoadShape, https_load

CASES = ("cold-start", "https", "credentials", "audit", "agent", "cluster")


@dataclass(frozen=True)
class Mode:
    load: LoadShape
    pages: PageShape
    agent: AgentShape
    cluster: ClusterShape
    credential_count: int
    rotate_repeats: int
    audit_count: int
    audit_repeats: int
    cold_repeats: int


QUICK = Mode(
    load=LoadShape(seconds=3, warmup_seconds=1, rounds=1),
    pages=PageShape(requests=3, budget_seconds=5),
    agent=AgentShape(seconds=2, rounds=1),
    cluster=ClusterShape(wrk_seconds=3, warmup_seconds=1, burst_seconds=2, rounds=1),
    credential_count=10_000,
    rotate_repeats=1,
    audit_count=100_000,
    audit_repeats=1,
    cold_repeats=5,
)
FULL = Mode(
    load=LoadShape(seconds=10, warmup_seconds=2, rounds=3),
    pages=PageShape(requests=10, budget_seconds=45),
    agent=AgentShape(seconds=5, rounds=3),
    cluster=ClusterShape(wrk_seconds=10, warmup_seconds=2, burst_seconds=5, rounds=5),
    credential_count=100_000,
    rotate_repeats=1,
    audit_count=1_000_000,
    audit_repeats=3,
    cold_repeats=10,
)


def run(quick: bool, cases: Collection[str] = CASES) -> list[Measurement]:
    mode = QUICK if quick else FULL
    unknown = set(cases) - set(CASES)
    if unknown:
        raise ValueError(f"unknown system case(s) {sorted(unknown)}; known: {', '.join(CASES)}")
    steps: dict[str, Callable[[Mode], list[Measurement]]] = {
        "cold-start": cold_start,
        "https": lambda m: https_load(m.load),
        "credentials": credentials,
        "audit": audit,
        "agent": agent,
        "cluster": lambda m: cluster(m.cluster),
    }
    results: list[Measurement] = []
    for case in CASES:  # always in this order, whatever order they were asked in
        if case in cases:
            results += steps[case](mode)
    return results


# --- credentials: list and status at 100k, then key rotation ----------------------------


def credentials(mode: Mode) -> list[Measurement]:
    from tests.vault.keys.rotation_helpers import insert_credentials

    count = mode.credential_count
    with fresh_vault() as vault:
        insert_credentials(vault.data_dir, count)
        note = f"{count} credentials"
        results = measure_pages(vault, CREDENTIAL_PAGES, mode.pages, note)
        return results + rotate(vault, count, mode)


def rotate(vault: Vault, count: int, mode: Mode) -> list[Measurement]:
    runs: list[float] = []
    for _ in range(mode.rotate_repeats):
        work = vault.data_dir.parent / "run"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(vault.data_dir, work)  # the prepared vault stays unrotated
        start = time.perf_counter()
        done = gwvault(work, "keys", "rotate", "--recovery-key-file", str(vault.recovery_key_file))
        runs.append(time.perf_counter() - start)
        if f"{count} credentials on version 2" not in done.stdout:
            raise RuntimeError(f"unexpected rotation result: {done.stdout}")
    seconds = statistics.median(runs)
    return [
        Measurement(
            "rotate-100k",
            "gwvault keys rotate",
            "s",
            seconds,
            tuple(runs),
            lower_is_better=True,
            note=f"{count} credentials, median of {len(runs)} run(s) each on a fresh copy of the"
            " prepared vault, wall time of the CLI process",
            extra={"credentials": float(count), "credentials_per_s": count / seconds},
        )
    ]


# --- audit: verification of a long trail, in the CLI and on the page ----------------------


def append_audit_entries(vault: Vault, count: int, batch: int = 50_000) -> None:
    from vault.context import RequestContext
    from vault.gateway import Gateway

    context = RequestContext(actor="bench:system", channel="cli")
    with Gateway.open(vault.data_dir, context) as gateway:
        written = 0
        while written < count:
            n = min(batch, count - written)
            with gateway.store.write():
                for _ in range(n):
                    gateway.audit.record("credential.tested", "sales-db")
            written += n


def audit(mode: Mode) -> list[Measurement]:
    count = mode.audit_count
    with fresh_vault() as vault:
        start = time.perf_counter()
        append_audit_entries(vault, count)
        build = time.perf_counter() - start
        results = audit_verify(vault, count, mode, build)
        # After the CLI's full check, as an operator's periodic verification would run.
        return results + measure_pages(vault, AUDIT_PAGES, mode.pages, f"{count}+ audit entries")


def audit_verify(vault: Vault, count: int, mode: Mode, build: float) -> list[Measurement]:
    from vault.audit.log import AuditLog
    from vault.context import RequestContext
    from vault.gateway import Gateway

    def cli() -> None:
        done = gwvault(vault.data_dir, "audit", "verify")
        if not done.stdout.startswith("OK"):
            raise RuntimeError(f"audit verify failed: {done.stdout}")

    cli_figure = timed(
        "audit-verify-1m",
        "cli",
        cli,
        repeats=mode.audit_repeats,
        note=f"gwvault audit verify over {count}+ entries (fresh process)",
    )
    context = RequestContext(actor="bench:system", channel="cli")
    entries = 0
    with Gateway.open(vault.data_dir, context) as gateway:
        log = AuditLog(gateway)

        def in_process() -> None:
            nonlocal entries
            report = log.verify()
            if not report.ok:
                raise RuntimeError(report.summary())
            entries = report.entries

        own = timed(
            "audit-verify-1m",
            "in-process",
            in_process,
            repeats=mode.audit_repeats,
            note=f"AuditLog(gateway).verify() over {count}+ entries, vault already open",
        )
    extra = {"entries": float(entries), "build_s": build}
    return [_with_extra(cli_figure, extra), _with_extra(own, extra)]


def _with_extra(measurement: Measurement, extra: dict[str, float]) -> Measurement:
    return Measurement(
        measurement.group,
        measurement.name,
        measurement.unit,
        measurement.value,
        measurement.rounds,
        measurement.lower_is_better,
        measurement.note,
        measurement.extra | extra,
    )


# --- agent ------------------------------------------------------------------------------


def agent(mode: Mode) -> list[Measurement]:
    with fresh_vault() as vault:
        return agent_throughput(vault.data_dir, mode.agent)


# --- cold start -------------------------------------------------------------------------


def cold_start(mode: Mode) -> list[Measurement]:
    def process(*argv: str) -> Callable[[], None]:
        def call() -> None:
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)  # noqa: S603 - fixed commands

        return call

    with fresh_vault() as vault:
        cases = {
            "python -c pass": process(str(PYTHON), "-c", "pass"),
            "--help": process(str(GWVAULT), "--help"),
            "status": process(str(GWVAULT), "--data-dir", str(vault.data_dir), "status"),
        }
        for call in cases.values():
            call()  # page cache and .pyc files warm: "cold" means a fresh process
        rounds: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(mode.cold_repeats):  # interleaved, so drift hits all alike
            for name, call in cases.items():
                rounds[name].append(timed("cold-start", name, call, repeats=1).value)
    note = f"fresh process (warm page cache), median of {mode.cold_repeats}, interleaved"
    return [
        Measurement(
            "cold-start",
            name,
            "s",
            statistics.median(values),
            tuple(values),
            lower_is_better=True,
            note=note,
        )
        for name, values in rounds.items()
    ]


if __name__ == "__main__":
    for m in run(quick="--full" not in sys.argv):
        print(f"{m.group:20} {m.name:16} {m.value:10.4g} {m.unit:6} {m.extra}")
