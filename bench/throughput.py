"""HTTPS throughput: ``gwvault serve`` against a hello-world on the same server stack.

Both servers run side by side; wrk drives POST /api/v1/encrypt-value (bearer
token, JSON body, keep-alive) at each connection count, the two servers
interleaved round by round so drift on a shared machine hits them alike.  The
project's own generator (``bench.load``) repeats the 8-connection gwvault run
as a cross-check of wrk.  ``serve-rss`` is the gwvault server's memory idle and
after all of that load.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bench.harness import Measurement
from bench.load import LoadResult, Request, run_load
from bench.served import (
    Server,
    admin_token,
    busy_cores,
    free_port,
    fresh_vault,
    gwvault_serve,
    hello_world_serve,
    serving,
    tree_rss_mib,
    tree_threads,
)
from bench.wrk import THREADS, WrkResult, available, run_wrk

GROUP = "https-encrypt-value"
CONNECTIONS = (8, 32, 128)
GWVAULT, HELLO = "gwvault", "hello-world"
# The same hello-world on other servers: the measurement behind the choice of server.
OTHER_SERVERS = {"hello-world (cheroot)": "cheroot", "hello-world (granian)": "granian"}
CROSS_CHECK = f"{GWVAULT} @8 (bench.load)"
STORED_CREDENTIALS = 50
SECRET_32 = "s3cr3t-0123456789abcdefghijklmno"  # noqa: S105 - a dummy 32-character secret
# bench.load's shape for the cross-check: client processes x keep-alive threads = 8.
CLIENT_PROCESSES, THREADS_PER_PROCESS = 2, 4

R = TypeVar("R")


def name(target: str, connections: int) -> str:
    """The row of one server at one connection count, e.g. ``gwvault @32``."""
    return f"{target} @{connections}"


@dataclass(frozen=True)
class LoadShape:
    seconds: float
    warmup_seconds: float
    rounds: int


def encrypt_value_request(token: str) -> Request:
    body = json.dumps(
        {"datasource": "sales-db", "type": "postgresql", "server": "db.internal:5432",
         "username": "alice", "secret": SECRET_32}
    )  # fmt: skip
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    return Request("POST", "/api/v1/encrypt-value", body.encode(), headers)


def https_load(shape: LoadShape) -> list[Measurement]:
    from tests.vault.keys.rotation_helpers import insert_credentials

    if not available():
        raise RuntimeError("wrk is not installed (make bench installs it: apt-get install wrk)")
    with fresh_vault() as vault:
        request = encrypt_value_request(admin_token(vault))
        insert_credentials(vault.data_dir, STORED_CREDENTIALS)
        logs = vault.data_dir.parent
        gw_port, hello_port = free_port(), free_port()
        with contextlib.ExitStack() as servers:
            gw = servers.enter_context(
                serving(gwvault_serve(vault.data_dir, gw_port), gw_port, logs / "serve.log")
            )
            hello = servers.enter_context(
                serving(hello_world_serve(hello_port), hello_port, logs / "hello.log")
            )
            targets = [(GWVAULT, gw), (HELLO, hello)]
            for row, server_name in OTHER_SERVERS.items():
                port = free_port()
                command = hello_world_serve(port, server_name)
                log = logs / f"hello-{server_name}.log"
                targets.append((row, servers.enter_context(serving(command, port, log))))
            time.sleep(0.5)  # let start-up garbage settle before reading memory
            idle = tree_rss_mib(gw.pid)
            runs: dict[str, list[tuple[WrkResult, float]]] = {}
            cross: list[tuple[LoadResult, float]] = []
            for _ in range(shape.rounds):
                for connections in CONNECTIONS:
                    for target, server in targets:
                        runs.setdefault(name(target, connections), []).append(
                            _wrk_round(server, request, connections, shape)
                        )
                    if connections == 8:  # the cross-check right after wrk's run it checks
                        cross.append(_load_round(gw, request, shape))
            after, threads = tree_rss_mib(gw.pid), tree_threads(gw.pid)
    results = [_wrk_measurement(row, row_runs, shape) for row, row_runs in runs.items()]
    results.append(_cross_check(cross, runs[name(GWVAULT, 8)], shape))
    return results + _rss(idle, after, threads, shape)


def _with_server_cpu(server: Server, measure: Callable[[], R]) -> tuple[R, float]:
    """``measure()``'s result and the cores the server kept busy meanwhile."""
    result, cores = busy_cores(measure, {"server": [server.pid]})
    return result, cores["server_cpu_cores"]


def _wrk_round(
    server: Server, request: Request, connections: int, shape: LoadShape
) -> tuple[WrkResult, float]:
    if shape.warmup_seconds > 0:  # new connections, warm caches; not counted
        run_wrk(
            "127.0.0.1", server.port, request, connections=connections, seconds=shape.warmup_seconds
        )
    return _with_server_cpu(
        server,
        lambda: run_wrk(
            "127.0.0.1", server.port, request, connections=connections, seconds=shape.seconds
        ),
    )


def _load_round(server: Server, request: Request, shape: LoadShape) -> tuple[LoadResult, float]:
    return _with_server_cpu(
        server,
        lambda: run_load(
            "127.0.0.1",
            server.port,
            request,
            processes=CLIENT_PROCESSES,
            threads_per_process=THREADS_PER_PROCESS,
            warmup=shape.warmup_seconds,
            seconds=shape.seconds,
        ),
    )


def _wrk_measurement(
    row: str, runs: list[tuple[WrkResult, float]], shape: LoadShape
) -> Measurement:
    rates = tuple(result.rate for result, _ in runs)

    def median(figure: Callable[[WrkResult, float], float]) -> float:
        return statistics.median(figure(result, cpu) for result, cpu in runs)

    return Measurement(
        GROUP,
        row,
        "req/s",
        statistics.median(rates),
        rates,
        note=(
            f"wrk -t{THREADS} --latency, keep-alive HTTPS POST, {shape.seconds:g} s after"
            f" {shape.warmup_seconds:g} s warmup, median of {len(runs)} round(s); req/s counts"
            " status < 400; errors = socket errors + status >= 400 over all rounds;"
            " cpu = cores busy (CPU s / wall s)"
        ),
        extra={
            "p50_ms": median(lambda r, _: r.p50_ms),
            "p99_ms": median(lambda r, _: r.p99_ms),
            "max_ms": median(lambda r, _: r.max_ms),
            "errors": float(sum(result.errors for result, _ in runs)),
            "connections": float(runs[0][0].connections),
            "client_cpu_cores": median(lambda r, _: r.client_cpu_cores),
            "server_cpu_cores": median(lambda _, cpu: cpu),
            "cpus": float(os.cpu_count() or 0),
        },
    )


def _cross_check(
    runs: list[tuple[LoadResult, float]], wrk_runs: list[tuple[WrkResult, float]], shape: LoadShape
) -> Measurement:
    rates = tuple(result.rate for result, _ in runs)
    window = shape.warmup_seconds + shape.seconds
    # Each round's ratio to the wrk run just before it, so drift between rounds cancels.
    ratios = [
        mine.rate / theirs.rate if theirs.rate else float("nan")
        for (mine, _), (theirs, _) in zip(runs, wrk_runs, strict=True)
    ]
    return Measurement(
        GROUP,
        CROSS_CHECK,
        "req/s",
        statistics.median(rates),
        rates,
        note=(
            f"the project's generator: {CLIENT_PROCESSES} processes x {THREADS_PER_PROCESS}"
            f" keep-alive threads, same request, right after wrk's gwvault @8 run in each round;"
            " vs_wrk = median of the rounds' req/s ratios to that run"
        ),
        extra={
            "p50_ms": statistics.median(result.p50_ms for result, _ in runs),
            "p99_ms": statistics.median(result.p99_ms for result, _ in runs),
            "errors": float(sum(result.errors for result, _ in runs)),
            "vs_wrk": statistics.median(ratios),
            "client_cpu_cores": statistics.median(
                result.client_cpu_seconds / window for result, _ in runs
            ),
            "server_cpu_cores": statistics.median(cpu for _, cpu in runs),
        },
    )


def _rss(idle: float, after: float, threads: int, shape: LoadShape) -> list[Measurement]:
    note = "VmRSS summed over the gwvault serve process and its children"
    return [
        Measurement("serve-rss", "idle", "MiB", idle, (idle,), lower_is_better=True, note=note),
        Measurement(
            "serve-rss",
            "after-load",
            "MiB",
            after,
            (after,),
            lower_is_better=True,
            note=f"{note}, after {shape.rounds} round(s) of the HTTPS loads",
            extra={"os_threads": float(threads)},
        ),
    ]
