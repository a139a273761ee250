"""agent_keys.process_hardening: what each step achieves, and what it reports.

Hardening is irreversible for the process that does it (a core limit of 0 cannot
be raised again without CAP_SYS_RESOURCE), so it runs in a fresh interpreter
here, never in the test process; the whole server is in
tests/web/test_service_hardening.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_keys import process_hardening
from agent_keys.process_hardening import hardening_state, lock_memory

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux hardening")

# Harden, then fork: the child inherits the core limit and the dumpable flag but
# not the memory lock, until it locks again.
HARDEN_AND_FORK = """
import json, os, resource
from agent_keys.process_hardening import hardening_state, harden_process, lock_memory
hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
resource.setrlimit(resource.RLIMIT_MEMLOCK, (8 << 20, hard))  # a finite soft limit everywhere
states = {"before": hardening_state(), "hardened": harden_process()}
read, write = os.pipe()
if os.fork() == 0:
    child = {"forked": hardening_state(), "relocked": (lock_memory(), hardening_state())[1]}
    os.write(write, json.dumps(child).encode())
    os._exit(0)
os.close(write)
states.update(json.loads(os.read(read, 65536)))
print(json.dumps(states))
"""


def holds_ipc_lock() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    status = Path("/proc/self/status").read_text()
    return bool(int(status.split("CapEff:", 1)[1].split()[0], 16) >> 14 & 1)


def hardened(*launcher: str) -> dict[str, Any]:
    done = subprocess.run(
        [*launcher, sys.executable, "-c", HARDEN_AND_FORK],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    states: dict[str, Any] = json.loads(done.stdout)
    return states


def test_the_state_says_what_the_kernel_says_of_this_process() -> None:
    state = hardening_state()
    assert set(state) == {"supported", "core_limit", "dumpable", "memory_locked",
                          "memory_lock_detail", "memlock_limit"}  # fmt: skip
    assert state["supported"] is sys.platform.startswith("linux")
    assert len(state["core_limit"]) == 2 and all(isinstance(n, int) for n in state["core_limit"])
    json.dumps(state)  # doctor prints it with --json


@linux_only
@pytest.mark.skipif(not holds_ipc_lock(), reason="CAP_IPC_LOCK lifts RLIMIT_MEMLOCK; not held")
def test_with_cap_ipc_lock_everything_takes_effect_and_a_fork_locks_again() -> None:
    states = hardened()
    assert states["before"]["memory_lock_detail"] == "lock_memory() has not run in this process"
    hardened_state = states["hardened"]
    assert hardened_state["core_limit"] == [0, 0] and hardened_state["dumpable"] == 0
    assert hardened_state["memory_locked"] is True
    assert "(CAP_IPC_LOCK)" in states["hardened"]["memory_lock_detail"]
    forked = states["forked"]
    assert (forked["core_limit"], forked["dumpable"], forked["memory_locked"]) == ([0, 0], 0, False)
    assert "a fork of one that locked" in forked["memory_lock_detail"]
    assert states["relocked"]["memory_locked"] is True


@linux_only
@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_under_a_finite_memlock_limit_memory_stays_unlocked_and_the_reason_is_given() -> None:
    states = hardened("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--")
    state = states["hardened"]
    assert (state["core_limit"], state["dumpable"], state["memory_locked"]) == ([0, 0], 0, False)
    assert state["memlock_limit"] == 8 << 20
    assert state["memory_lock_detail"] == (
        "RLIMIT_MEMLOCK is 8192 KiB: locking every page would make later allocations fail;"
        " set it to unlimited (LimitMEMLOCK=infinity in the unit)"
    )


def test_elsewhere_than_linux_nothing_is_locked_and_it_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(process_hardening, "_lock_outcome", {})
    assert lock_memory() is False
    state = hardening_state()
    assert state["supported"] is False and state["dumpable"] is None
    assert state["memory_lock_detail"] == "memory locking is not supported on darwin"


OWN_FILES_AFTER_FORK = """
import os
from agent_keys.private_files import memory_files
from agent_keys.process_hardening import harden_process
harden_process()
if os.fork() == 0:  # a worker: not dumpable, its /proc files root's
    with memory_files(b"chain", b"key") as paths:
        os._exit(0 if [open(p, "rb").read() for p in paths] == [b"chain", b"key"] else 3)
print(os.waitstatus_to_exitcode(os.wait()[1]))
"""


@linux_only
@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_hardened_fork_still_opens_its_own_memory_files_as_an_ordinary_user() -> None:
    # serve's TLS key and a PostgreSQL CA reach OpenSSL and libpq as /proc/self/fd/N
    # (private_files.memory_files); not dumpable, those belong to root, yet the
    # kernel lets a process open its own.
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
         sys.executable, "-c", OWN_FILES_AFTER_FORK],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == "0", done.stderr


def test_every_cli_command_makes_itself_undumpable() -> None:
    script = (
        "from vault.cli.main import main; from agent_keys.process_hardening import"
        " hardening_state; main(['--data-dir', '/nonexistent/gwvault', 'status']);"
        " print(hardening_state()['dumpable'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == ("0" if sys.platform.startswith("linux") else "None")
