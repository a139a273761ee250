"""A closed-loop HTTPS load generator: keep-alive clients in several processes.

Each client is a thread with its own ``http.client.HTTPSConnection``, reused
across requests (TLS verification off: the server's certificate is
self-signed).  Clients are spread over several processes so that Python's GIL
on the client side is not what limits the rate.  All processes share one
window on the system-wide monotonic clock: requests finishing in the warmup
are not counted.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import ssl
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]


@dataclass(frozen=True)
class _Slice:
    """What one client process measured."""

    ok: int
    errors: int
    latencies: list[float]  # seconds, of counted 2xx responses
    cpu_seconds: float  # the client process's CPU time while it drove the load


@dataclass(frozen=True)
class LoadResult:
    ok: int
    errors: int
    seconds: float
    clients: int
    processes: int
    p50_ms: float
    p99_ms: float
    client_cpu_seconds: float  # all client processes together

    @property
    def rate(self) -> float:
        """2xx responses per second in the measured window."""
        return self.ok / self.seconds


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the bench server's certificate is self-signed
    return context


def _client_process(
    host: str, port: int, request: Request, threads: int, window: tuple[float, float]
) -> _Slice:
    counted_from, until = window
    cpu_before = _cpu_seconds()
    context = _client_context()
    lock = threading.Lock()
    totals = {"ok": 0, "errors": 0}
    latencies: list[float] = []

    def client() -> None:
        ok = errors = 0
        mine: list[float] = []
        connection: http.client.HTTPSConnection | None = None
        while (start := time.monotonic()) < until:
            try:
                if connection is None:
                    connection = http.client.HTTPSConnection(
                        host, port, context=context, timeout=30
                    )
                connection.request(
                    request.method, request.path, body=request.body, headers=request.headers
                )
                response = connection.getresponse()
                response.read()
                good = 200 <= response.status < 300
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                good = False
                if connection is not None:
                    connection.close()
                connection = None
            end = time.monotonic()
            if start >= counted_from and end <= until:
                if good:
                    ok += 1
                    mine.append(end - start)
                else:
                    errors += 1
        if connection is not None:
            connection.close()
        with lock:
            totals["ok"] += ok
            totals["errors"] += errors
            latencies.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return _Slice(totals["ok"], totals["errors"], latencies, _cpu_seconds() - cpu_before)


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def run_load(
    host: str,
    port: int,
    request: Request,
    *,
    processes: int,
    threads_per_process: int,
    warmup: float,
    seconds: float,
) -> LoadResult:
    """Drive ``request`` for ``warmup`` + ``seconds``; count only the last ``seconds``."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        # Start the processes (spawn imports take a while) before the clock starts.
        list(pool.map(time.sleep, [0.0] * processes))
        counted_from = time.monotonic() + warmup
        until = counted_from + seconds
        futures = [
            pool.submit(
                _client_process, host, port, request, threads_per_process, (counted_from, until)
            )
            for _ in range(processes)
        ]
        slices = [future.result() for future in futures]
    latencies = sorted(x for part in slices for x in part.latencies)
    return LoadResult(
        ok=sum(part.ok for part in slices),
        errors=sum(part.errors for part in slices),
        seconds=seconds,
        clients=processes * threads_per_process,
        processes=processes,
        p50_ms=1000 * statistics.median(latencies) if latencies else float("nan"),
        p99_ms=1000 * _percentile(latencies, 0.99) if latencies else float("nan"),
        client_cpu_seconds=sum(part.cpu_seconds for part in slices),
    )


def _percentile(ordered: list[float], fraction: float) -> float:
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]
