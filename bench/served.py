"""Vaults, CLI calls and servers for the system benchmarks, as an operator runs them.

Everything goes through the ``gwvault`` CLI and HTTPS, so the benchmarks
measure whatever ``gwvault serve`` is when they run.  Server CPU and memory are
summed over the serving process and its descendants, so a server that forks
worker processes is counted whole.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

RECOVERY_KEY = "orbit walnut trellis quasar lantern 42"
USER_PASSWORD = "quartz-heron-mandolin-7451"  # noqa: S105 - the bench user's dummy password
BIN = Path(sys.executable).parent
GWVAULT = BIN / "gwvault"
PYTHON = Path(sys.executable)

R = TypeVar("R")


@dataclass(frozen=True)
class Vault:
    data_dir: Path
    recovery_key_file: Path


def gwvault(
    data_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI on ``data_dir``; raise with its stderr if it fails."""
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [str(GWVAULT), "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gwvault {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


@contextlib.contextmanager
def bench_directory() -> Iterator[tuple[Path, Path]]:
    """A temporary directory holding the bench's recovery key file (0600), removed
    afterwards: (the directory, the key file)."""
    root = Path(tempfile.mkdtemp(prefix="gwvault-bench-"))
    try:
        key_file = root / "recovery-key"
        key_file.touch(mode=0o600)
        key_file.chmod(0o600)
        key_file.write_text(RECOVERY_KEY)
        yield root, key_file
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def fresh_vault() -> Iterator[Vault]:
    """An initialised vault in a temporary directory, removed afterwards."""
    with bench_directory() as (root, key_file):
        data_dir = root / "data"
        gwvault(data_dir, "init", "--name", "bench", "--recovery-key-file", str(key_file))
        yield Vault(data_dir, key_file)


def admin_token(vault: Vault, name: str = "bench") -> str:
    """A new admin API token (the CLI prints it on its last line)."""
    return gwvault(
        vault.data_dir, "tokens", "create", "--name", name, "--role", "admin"
    ).stdout.splitlines()[-1]


def add_admin_user(vault: Vault, name: str = "bench-admin") -> tuple[str, str]:
    """A web user with the admin role: (name, password); the password goes by pipe."""
    gwvault(vault.data_dir, "users", "add", name, "--role", "admin", stdin=USER_PASSWORD + "\n")
    return name, USER_PASSWORD


@dataclass(frozen=True)
class Server:
    pid: int
    port: int


def gwvault_serve(data_dir: Path, port: int, workers: int | None = None) -> list[str]:
    """``gwvault serve`` on ``port``, with ``workers`` processes (default: one per core)."""
    # The benchmark runs as whoever runs it, root on a bench machine too.
    serve = ["serve", "--allow-root", "--port", str(port)]
    command = [str(GWVAULT), "--data-dir", str(data_dir), *serve]
    return command + (["--workers", str(workers)] if workers is not None else [])


def hello_world_serve(port: int, server: str = "gwvault") -> list[str]:
    return [str(PYTHON), "-m", "bench.hello_world", "--port", str(port), "--server", server]


@contextlib.contextmanager
def serving(command: Sequence[str], port: int, log: Path, timeout: float = 60) -> Iterator[Server]:
    """Run ``command`` until it prints ``serving https://``; SIGTERM it afterwards."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)  # noqa: S603 - ours
    try:
        assert process.stdout is not None  # noqa: S101 - Popen(stdout=PIPE)
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise RuntimeError(f"{command[0]} not ready in {timeout} s: {log.read_text()}")
        first = process.stdout.readline().decode()
        if not first.startswith("serving https://"):
            raise RuntimeError(f"{command[0]} did not start: {first!r} {log.read_text()}")
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


def free_port() -> int:
    from tests.service_fixtures import free_tcp_port

    return free_tcp_port()


# --- the server's process tree ----------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def proc_status(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


def tree_rss_mib(pid: int) -> float:
    """VmRSS summed over the tree (shared pages counted once per process)."""
    total_kib = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, KeyError):
            total_kib += int(proc_status(member, "VmRSS").split()[0])  # "12345 kB"
    return total_kib / 1024


def tree_threads(pid: int) -> int:
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, KeyError):
            total += int(proc_status(member, "Threads"))
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of the tree: live members, and the children they reaped."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime: fields 14-17 of proc(5)
            total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time all cores spent running something since boot (proc(5) /proc/stat; not
    idle, iowait, nor steal: time the hypervisor gave another guest)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = ticks
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def busy_cores(
    measure: Callable[[], R], trees: Mapping[str, Sequence[int]]
) -> tuple[R, dict[str, float]]:
    """``measure()``'s result and the cores kept busy meanwhile: ``NAME_cpu_cores`` by the
    process trees rooted at each name's pids, and ``machine_cpu_cores`` by everything
    (another tenant of a shared machine included)."""

    def sample() -> dict[str, float]:
        own = {name: sum(tree_cpu_seconds(pid) for pid in pids) for name, pids in trees.items()}
        return own | {"machine": machine_cpu_seconds()}

    before, start = sample(), time.monotonic()
    result = measure()
    after, wall = sample(), time.monotonic() - start
    return result, {f"{name}_cpu_cores": (after[name] - before[name]) / wall for name in after}
