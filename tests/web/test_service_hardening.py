"""``gwvault serve`` hardened, as the unit runs it: its own user, no core dumps,
not dumpable, memory locked, READY=1 only once it answers TLS (issue 19).

One real server, started the way deploy/gwvault.service starts it: as an
unprivileged user (uid 65534 here, through ``setpriv``), with
``LimitMEMLOCK=infinity`` (``prlimit``), from a shell that allows unlimited core
files (``ulimit -c unlimited``), with a real datagram socket as ``$NOTIFY_SOCKET``.
Changing user needs root, which the tests have here; elsewhere they skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.vault.cli.gwvault_process import GWVAULT
from tests.web.served_process import CLIENT_TLS, children_of, gwvault_serve

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process hardening"),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting serve as another user needs root"),
    pytest.mark.xdist_group("service_hardening"),  # one server for the module
]
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
# systemd's LimitCORE is what the unit forbids; a shell that allows core files is
# the harder case: the process must lower the limit itself.
WITH_CORES_ALLOWED = ["sh", "-c", 'ulimit -c unlimited && exec "$@"', "sh"]


def status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def may_raise_hard_limits() -> bool:
    """CAP_SYS_RESOURCE in this process's effective set (capability 24)."""
    return bool(int(status_field(os.getpid(), "CapEff"), 16) >> 24 & 1)


def as_the_unit_runs_it() -> list[str]:
    """As nobody, with LimitMEMLOCK=infinity as systemd sets it, where this process
    may raise a hard limit; in a container without CAP_SYS_RESOURCE the limit stays
    as it is and serve carries on unlocked (the root server below locks)."""
    if may_raise_hard_limits():
        return ["prlimit", "--memlock=unlimited", "--", *AS_NOBODY, "--"]
    return [*AS_NOBODY, "--"]


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    scratch: Path
    notices: socket.socket

    @property
    def cwd(self) -> Path:
        return self.scratch / "cwd"

    def processes(self) -> list[int]:
        """The parent, its two workers and its housekeeper."""
        return [self.process.pid, *children_of(self.process.pid)]


def notify_socket(path: Path) -> socket.socket:
    """A service manager's end: a datagram socket the service may write to."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    path.chmod(0o777)  # sendto() needs write permission on the socket file
    sock.settimeout(30)
    return sock


def notices_until(sock: socket.socket, last: str) -> list[str]:
    """The messages received, in order, up to the first that holds ``last``."""
    seen: list[str] = []
    while not any(last in message.split("\n") for message in seen):
        seen.append(sock.recv(4096).decode())
    return seen


def owned_by_nobody(path: Path) -> Path:
    for inner in [path, *path.rglob("*")]:
        os.chown(inner, NOBODY, NOBODY)
    return path


@pytest.fixture(scope="module")
def served(vault_templates: dict[str, Path]) -> Iterator[Served]:
    # Not under pytest's 0700 temporary root: the server's user must reach it.
    scratch = Path(tempfile.mkdtemp(prefix="gwvault-hardening-"))
    try:
        shutil.copytree(vault_templates["ec-p256"], scratch / "data")
        (scratch / "cwd").mkdir()
        owned_by_nobody(scratch)
        with notify_socket(scratch / "notify") as notices, gwvault_serve(
            scratch / "data", workers=2, allow_root=False, cwd=scratch / "cwd",
            launcher=[*WITH_CORES_ALLOWED, *as_the_unit_runs_it()],
            env={"NOTIFY_SOCKET": str(scratch / "notify")}, log_file=scratch / "serve.log",
        ) as (process, port):  # fmt: skip
            yield Served(process, port, scratch, notices)
    finally:
        shutil.rmtree(scratch)


def core_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return " ".join(line.split()[4:6])
    raise AssertionError(f"no core limit in /proc/{pid}/limits")


def handshake(port: int) -> bool:
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            CLIENT_TLS.wrap_socket(raw),
        ):
            return True
    except OSError:
        return False


def test_ready_is_sent_once_the_vault_is_unlocked_and_the_port_answers_tls(served: Served) -> None:
    notices = notices_until(served.notices, "READY=1")
    assert notices[0] == "STATUS=unlocking the vault"
    assert notices[-1] == f"READY=1\nSTATUS=serving https://127.0.0.1:{served.port}"
    assert handshake(served.port)


def test_serve_runs_as_its_own_user_without_allow_root(served: Served) -> None:
    assert all(status_field(pid, "Uid").split()[0] == str(NOBODY) for pid in served.processes())


def test_no_process_of_serve_may_write_a_core_file(served: Served) -> None:
    # The shell allowed unlimited cores; the parent lowered soft and hard to 0 and
    # the workers inherit it (threat T-PROC-1).
    assert len(served.processes()) == 4
    assert {pid: core_limit(pid) for pid in served.processes()} == dict.fromkeys(
        served.processes(), "0 0"
    )


def test_no_process_of_serve_is_dumpable(served: Served) -> None:
    # A process that is not dumpable has its /proc/PID files owned by root, whoever
    # runs it (proc(5), PR_SET_DUMPABLE); a dumpable one's are its user's.
    owners = {pid: os.stat(f"/proc/{pid}/environ").st_uid for pid in served.processes()}
    assert owners == dict.fromkeys(served.processes(), 0)


def locked_kib(pids: list[int]) -> dict[int, int]:
    return {pid: int(status_field(pid, "VmLck").split()[0]) for pid in pids}


def test_every_process_of_serve_locks_its_memory_under_the_units_limit(served: Served) -> None:
    if not may_raise_hard_limits():
        pytest.skip("no CAP_SYS_RESOURCE here to give serve LimitMEMLOCK=infinity")
    # mlockall is not inherited by fork: each worker locked its own (T-PROC-2).
    assert all(kib > 0 for kib in locked_kib(served.processes()).values())


def test_serve_says_when_it_could_not_lock_its_memory(served: Served) -> None:
    log = (served.scratch / "serve.log").read_text()
    if may_raise_hard_limits():
        assert "memory not locked" not in log
    else:
        assert "warning: memory not locked: RLIMIT_MEMLOCK is" in log


PEEK = """
import json, sys
found = {}
for pid in sys.argv[1:]:
    try:
        open(f"/proc/{pid}/environ", "rb").read(1)
        open(f"/proc/{pid}/mem", "rb").close()  # the ptrace attach check
        found[pid] = "read"
    except OSError as e:
        found[pid] = e.strerror
print(json.dumps(found))
"""


def test_another_process_of_the_same_user_cannot_peek_into_serve(served: Served) -> None:
    # Threat T-PROC-3: the same uid would pass the ptrace check but for PR_SET_DUMPABLE=0.
    control = subprocess.Popen([*AS_NOBODY, "--", "sleep", "60"])
    try:
        pids = [*served.processes(), control.pid]
        peek = subprocess.run(
            [*AS_NOBODY, "--", sys.executable, "-c", PEEK, *map(str, pids)],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
    finally:
        control.kill()
        control.wait()
    found = json.loads(peek.stdout)
    assert found.pop(str(control.pid)) == "read"  # the same user reads a dumpable process
    assert set(found.values()) == {"Permission denied"}, found


def core_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("core"))


def test_a_crashing_worker_leaves_no_core_file(served: Served) -> None:
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern {pattern!r} does not write into the crashing process's cwd")
    control = subprocess.run(
        [*WITH_CORES_ALLOWED, *AS_NOBODY, "--", sys.executable, "-c",
         "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
        cwd=served.scratch, check=False, timeout=60,
    )  # fmt: skip
    assert control.returncode != 0
    assert core_files(served.scratch), "the control wrote no core: this machine drops them all"
    worker = children_of(served.process.pid)[0]
    for crash in (signal.SIGSEGV, signal.SIGABRT):
        os.kill(worker, crash)
        deadline = time.monotonic() + 20
        while worker in children_of(served.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker not in children_of(served.process.pid)
        with contextlib.suppress(IndexError):
            worker = children_of(served.process.pid)[0]
    assert core_files(served.cwd) == []


def test_serve_as_root_is_refused_with_one_line_and_changes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(GWVAULT), "--data-dir", str(tmp_path / "data"), "serve"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "refusing to serve as root" in done.stderr and "--allow-root" in done.stderr
    assert not (tmp_path / "data").exists()


def test_as_root_serve_locks_every_process_and_notifies_an_abstract_socket(
    vault_templates: dict[str, Path], tmp_path: Path
) -> None:
    # Root holds CAP_IPC_LOCK, which lifts RLIMIT_MEMLOCK: parent, workers and
    # housekeeper each lock (T-PROC-2); the "@" form is the abstract namespace.
    name = f"gwvault-test-{os.getpid()}-{time.monotonic_ns()}"
    shutil.copytree(vault_templates["ec-p256"], tmp_path / "data")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notices:
        notices.bind("\0" + name)
        notices.settimeout(30)
        env = {"NOTIFY_SOCKET": f"@{name}"}
        with gwvault_serve(tmp_path / "data", workers=2, env=env) as (process, port):
            assert notices_until(notices, "READY=1") and handshake(port)
            pids = [process.pid, *children_of(process.pid)]
            assert len(pids) == 4 and all(kib > 0 for kib in locked_kib(pids).values())
            process.send_signal(signal.SIGTERM)
            assert notices_until(notices, "STOPPING=1")[-1] == "STOPPING=1\nSTATUS=stopping"
            assert process.wait(timeout=30) == 0
