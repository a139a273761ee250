"""Drive an HTTPS endpoint with wrk (Debian's ``wrk``), the independent load generator.

wrk is event-driven C: a thread of it keeps hundreds of keep-alive TLS
connections busy for a small part of a core, so on a 2-core machine it leaves
the server most of the CPU.  The server and the client still share the
machine, so every run reports the client's CPU too (its rusage as a child).
Several servers (a cluster's members) get one wrk each, started together.

The request (method, body, headers) is set by a generated Lua script; a
``done`` hook prints the summary as one JSON line, so nothing depends on
wrk's human-readable text.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.load import Request

MARKER = "GWVAULT-WRK "
# Client threads: one wrk thread drives even 128 TLS connections without
# saturating a core, and a second would only take more of the server's CPU.
THREADS = 1
TIMEOUT_SECONDS = 10  # a response slower than this counts as a timeout error

_DONE_HOOK = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d,'
    .. ' "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    "%MARKER%", summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int  # responses received, any status
    status_errors: int  # responses with status >= 400 (wrk's "non-2xx or 3xx")
    socket_errors: int  # connect, read, write and timeout errors
    seconds: float
    connections: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_seconds: float  # wrk's user + system time
    client_wall_seconds: float  # wrk's whole run, start-up included

    @property
    def client_cpu_cores(self) -> float:
        """Cores wrk kept busy on average (1.0 = one core)."""
        return self.client_cpu_seconds / self.client_wall_seconds

    @property
    def rate(self) -> float:
        """Successful (status < 400) responses per second."""
        return (self.requests - self.status_errors) / self.seconds

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors


def available() -> bool:
    return shutil.which("wrk") is not None


def lua_script(request: Request) -> str:
    """The Lua that makes wrk send ``request`` on every connection."""
    lines = [f"wrk.method = {_lua_string(request.method)}"]
    if request.body is not None:
        lines.append(f"wrk.body = {_lua_string(request.body.decode())}")
    for name, value in request.headers.items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    return "\n".join(lines) + "\n" + _DONE_HOOK.replace("%MARKER%", MARKER)


def _lua_string(text: str) -> str:
    # JSON string escapes (\", \\, \n, \uXXXX for controls) are valid Lua 5.1 escapes
    # except \u, which ensure_ascii would produce only for non-ASCII text: refuse it.
    if not text.isascii():
        raise ValueError("wrk requests here are ASCII")
    return json.dumps(text)


def run_wrk(
    host: str, port: int, request: Request, *, connections: int, seconds: float
) -> WrkResult:
    """wrk against ``https://host:port`` + ``request.path`` for ``seconds``."""
    return run_wrk_at_once([(host, port)], request, connections=connections, seconds=seconds)[0]


def run_wrk_at_once(
    targets: Sequence[tuple[str, int]], request: Request, *, connections: int, seconds: float
) -> list[WrkResult]:
    """One wrk per ``(host, port)``, all started together, ``connections`` each; their
    results in the order of ``targets`` (each with its own process's CPU time)."""
    with tempfile.TemporaryDirectory(prefix="gwvault-wrk-") as tmp:
        script = Path(tmp) / "request.lua"
        script.write_text(lua_script(request))
        started: list[tuple[subprocess.Popen[str], float]] = []
        try:
            for host, port in targets:
                url = f"https://{host}:{port}{request.path}"
                started.append(_start(url, script, connections, seconds))
            return [_finish(process, start, connections) for process, start in started]
        finally:
            for process, _ in started:  # left running only when another failed
                if process.returncode is None:
                    process.kill()
                    process.wait()


def _start(
    url: str, script: Path, connections: int, seconds: float
) -> tuple[subprocess.Popen[str], float]:
    command = [
        "wrk",
        f"-t{min(THREADS, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={TIMEOUT_SECONDS}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    start = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return process, start


def _finish(process: subprocess.Popen[str], start: float, connections: int) -> WrkResult:
    """Reap one wrk with wait4, whose rusage is that process's CPU alone (wrk's few
    lines of output wait in the pipes meanwhile), then read its summary."""
    with process:
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        assert process.stdout is not None and process.stderr is not None  # noqa: S101 - PIPE
        stdout, stderr = process.stdout.read(), process.stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited {process.returncode}: {stderr.strip()}")
    return _parse(stdout, connections, usage.ru_utime + usage.ru_stime, wall)


def _parse(stdout: str, connections: int, cpu: float, wall: float) -> WrkResult:
    line = next((x for x in stdout.splitlines() if x.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {stdout.strip()}")
    summary = json.loads(line[len(MARKER) :])
    return WrkResult(
        requests=summary["requests"],
        status_errors=summary["status"],
        socket_errors=sum(summary[k] for k in ("connect", "read", "write", "timeout")),
        seconds=summary["duration_us"] / 1e6,
        connections=connections,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        client_cpu_seconds=cpu,
        client_wall_seconds=wall,
    )
