"""System benchmarks: the real CLI and HTTPS server, as an operator runs them.

``run(quick)`` measures, each on a fresh vault in a temporary directory:

* ``https-encrypt-value`` / ``https-list``: requests per second of a running
  ``gwvault serve`` under concurrent keep-alive HTTPS clients on loopback
  (``bench.load``: several client processes, several threads each);
* ``serve-rss``: the server's resident memory idle after start and after that load;
* ``rotate-100k``: ``gwvault keys rotate`` over many credentials;
* ``audit-verify-1m``: ``gwvault audit verify`` and ``AuditLog.verify()`` over a long trail;
* ``cold-start``: ``gwvault --help`` and ``gwvault status`` as fresh processes,
  against ``python -c pass`` as the floor.

Quick mode (under a minute) uses smaller counts and shorter load windows.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Measurement, timed
from bench.load import LoadResult, Request, run_load

RECOVERY_KEY = "orbit walnut trellis quasar lantern 42"
BIN = Path(sys.executable).parent
GWVAULT = BIN / "gwvault"
PYTHON = Path(sys.executable)

# Load shape: client processes x keep-alive connections (threads) per process.
CLIENT_PROCESSES = 2
THREADS_PER_PROCESS = 4
STORED_CREDENTIALS = 50
SECRET_32 = "s3cr3t-0123456789abcdefghijklmno"  # noqa: S105 - a dummy 32-character secret


@dataclass(frozen=True)
class Mode:
    load_seconds: float
    warmup_seconds: float
    load_rounds: int
    rotate_count: int
    rotate_repeats: int
    audit_count: int
    audit_repeats: int
    cold_repeats: int


QUICK = Mode(
    load_seconds=5,
    warmup_seconds=2,
    load_rounds=1,
    rotate_count=10_000,
    rotate_repeats=3,
    audit_count=100_000,
    audit_repeats=3,
    cold_repeats=5,
)
FULL = Mode(
    load_seconds=20,
    warmup_seconds=2,
    load_rounds=3,
    rotate_count=100_000,
    rotate_repeats=1,
    audit_count=1_000_000,
    audit_repeats=3,
    cold_repeats=10,
)


def run(quick: bool) -> list[Measurement]:
    mode = QUICK if quick else FULL
    results: list[Measurement] = []
    results += cold_start(mode)
    results += https(mode)
    results += rotate(mode)
    results += audit_verify(mode)
    return results


# --- vaults and processes -------------------------------------------------------------


@dataclass(frozen=True)
class Vault:
    data_dir: Path
    recovery_key_file: Path


def gwvault(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI on ``data_dir``; raise with its stderr if it fails."""
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [str(GWVAULT), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gwvault {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


@contextlib.contextmanager
def fresh_vault() -> Iterator[Vault]:
    """An initialised vault in a temporary directory, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="gwvault-bench-"))
    try:
        key_file = root / "recovery-key"
        key_file.touch(mode=0o600)
        key_file.chmod(0o600)
        key_file.write_text(RECOVERY_KEY)
        data_dir = root / "data"
        gwvault(data_dir, "init", "--name", "bench", "--recovery-key-file", str(key_file))
        yield Vault(data_dir, key_file)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Server:
    pid: int
    port: int


@contextlib.contextmanager
def serving(data_dir: Path, log: Path, timeout: float = 30) -> Iterator[Server]:
    """``gwvault serve`` on a free loopback port, ready; stopped (SIGTERM) afterwards."""
    from tests.service_fixtures import free_tcp_port

    port = free_tcp_port()
    with log.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [str(GWVAULT), "--data-dir", str(data_dir), "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert process.stdout is not None  # noqa: S101 - Popen(stdout=PIPE)
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise RuntimeError(f"gwvault serve not ready in {timeout} s: {log.read_text()}")
        first = process.stdout.readline().decode()
        if not first.startswith("serving https://"):
            raise RuntimeError(f"gwvault serve did not start: {first!r} {log.read_text()}")
        yield Server(process.pid, port)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def proc_status(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


def rss_mib(pid: int) -> float:
    kib = proc_status(pid, "VmRSS").split()[0]  # "12345 kB"
    return int(kib) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


# --- 1. HTTPS throughput, 5. server memory ----------------------------------------------


def https(mode: Mode) -> list[Measurement]:
    from tests.vault.keys.rotation_helpers import insert_credentials
    from web.server import WORKER_THREADS

    with fresh_vault() as vault:
        token = gwvault(
            vault.data_dir, "tokens", "create", "--name", "bench", "--role", "admin"
        ).stdout.splitlines()[-1]
        insert_credentials(vault.data_dir, STORED_CREDENTIALS)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        body = json.dumps(
            {"datasource": "sales-db", "type": "postgresql", "server": "db.internal:5432",
             "username": "alice", "secret": SECRET_32}
        )  # fmt: skip
        cases = {
            "https-encrypt-value": Request(
                "POST",
                "/api/v1/encrypt-value",
                body.encode(),
                headers | {"Content-Type": "application/json"},
            ),
            "https-list": Request("GET", "/api/v1/credentials", None, headers),
        }
        with serving(vault.data_dir, vault.data_dir.parent / "serve.log") as server:
            time.sleep(0.5)  # let start-up garbage settle before reading memory
            idle = rss_mib(server.pid)
            per_case: dict[str, list[tuple[LoadResult, float]]] = {name: [] for name in cases}
            for _ in range(mode.load_rounds):  # rounds interleaved across the two cases
                for name, request in cases.items():
                    cpu_before, wall_before = cpu_seconds(server.pid), time.monotonic()
                    result = run_load(
                        "127.0.0.1",
                        server.port,
                        request,
                        processes=CLIENT_PROCESSES,
                        threads_per_process=THREADS_PER_PROCESS,
                        warmup=mode.warmup_seconds,
                        seconds=mode.load_seconds,
                    )
                    server_cpu = (cpu_seconds(server.pid) - cpu_before) / (
                        time.monotonic() - wall_before
                    )
                    per_case[name].append((result, server_cpu))
            after = rss_mib(server.pid)
            os_threads = int(proc_status(server.pid, "Threads"))
    measurements = [
        _load_measurement(name, runs, mode, WORKER_THREADS, os_threads)
        for name, runs in per_case.items()
    ]
    note = "VmRSS of the gwvault serve process"
    measurements += [
        Measurement("serve-rss", "idle", "MiB", idle, (idle,), lower_is_better=True, note=note),
        Measurement(
            "serve-rss",
            "after-load",
            "MiB",
            after,
            (after,),
            lower_is_better=True,
            note=f"{note}, after {mode.load_rounds} round(s) of both HTTPS loads",
        ),
    ]
    return measurements


def _load_measurement(
    group: str, runs: list[tuple[LoadResult, float]], mode: Mode, workers: int, os_threads: int
) -> Measurement:
    rates = tuple(result.rate for result, _ in runs)
    window = mode.warmup_seconds + mode.load_seconds
    first = runs[0][0]

    def median(values: Callable[[LoadResult, float], float]) -> float:
        return statistics.median(values(result, cpu) for result, cpu in runs)

    return Measurement(
        group,
        "gwvault serve",
        "req/s",
        statistics.median(rates),
        rates,
        note=(
            f"{first.clients} keep-alive clients in {first.processes} processes,"
            f" {mode.load_seconds:g} s after {mode.warmup_seconds:g} s warmup, median of"
            f" {len(runs)} round(s); errors = non-2xx or failed requests over all rounds;"
            " cpu = cores busy (CPU s / wall s) over warmup + window"
        ),
        extra={
            "p50_ms": median(lambda r, _: r.p50_ms),
            "p99_ms": median(lambda r, _: r.p99_ms),
            "errors": float(sum(result.errors for result, _ in runs)),
            "clients": float(first.clients),
            "client_processes": float(first.processes),
            "server_worker_threads": float(workers),
            "server_os_threads": float(os_threads),
            "server_cpu_cores": median(lambda _, cpu: cpu),
            "client_cpu_cores": median(lambda r, _: r.client_cpu_seconds / window),
            "cpus": float(os.cpu_count() or 0),
        },
    )


# --- 2. key rotation ------------------------------------------------------------------


def rotate(mode: Mode) -> list[Measurement]:
    from tests.vault.keys.rotation_helpers import insert_credentials

    count = mode.rotate_count
    with fresh_vault() as vault:
        insert_credentials(vault.data_dir, count)
        runs: list[float] = []
        for _ in range(mode.rotate_repeats):
            work = vault.data_dir.parent / "run"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(vault.data_dir, work)  # the prepared vault stays unrotated
            start = time.perf_counter()
            done = gwvault(
                work, "keys", "rotate", "--recovery-key-file", str(vault.recovery_key_file)
            )
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


# --- 3. audit verification ------------------------------------------------------------


def append_audit_entries(data_dir: Path, count: int, batch: int = 50_000) -> None:
    from vault.context import RequestContext
    from vault.gateway import Gateway

    context = RequestContext(actor="bench:system", channel="cli")
    with Gateway.open(data_dir, context) as gateway:
        written = 0
        while written < count:
            n = min(batch, count - written)
            with gateway.store.write():
                for _ in range(n):
                    gateway.audit.record("credential.tested", "sales-db")
            written += n


def audit_verify(mode: Mode) -> list[Measurement]:
    from vault.audit.log import AuditLog
    from vault.context import RequestContext
    from vault.gateway import Gateway

    count = mode.audit_count
    with fresh_vault() as vault:
        start = time.perf_counter()
        append_audit_entries(vault.data_dir, count)
        build = time.perf_counter() - start

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


# --- 4. cold start --------------------------------------------------------------------


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
