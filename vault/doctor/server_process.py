"""The running server's own hardening, as the kernel shows it from outside.

``gwvault serve`` hardens itself (``agent_keys.process_hardening``): core
limit 0, not dumpable, memory locked where ``RLIMIT_MEMLOCK`` allows.  Its
``hardening_state()`` describes the process that calls it, so the doctor (a
separate process) reads the server's ``/proc/PID/status`` instead: ``VmLck``
is the memory it has locked, and the owner of ``/proc/PID`` turns to root
when a process of another user is not dumpable (proc(5)).  The core limit is
the core dumps check's.
"""

from __future__ import annotations

import os

from vault.doctor.checks import Check, DoctorSubject
from vault.doctor.system import PROC, read_kernel_text, server_pid

_LOCK_FIX = (
    "give the server an unlimited memory-lock limit: LimitMEMLOCK=infinity in the unit"
    " (ours sets it), or ulimit -l unlimited in the shell that starts it"
)


def parse_status(text: str) -> tuple[int | None, int | None]:
    """(kB of locked memory, real uid) from a /proc/PID/status text; None where missing."""
    locked = uid = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "VmLck:" and fields[1].isdigit():
            locked = int(fields[1])
        elif len(fields) >= 2 and fields[0] == "Uid:" and fields[1].isdigit():
            uid = int(fields[1])
    return locked, uid


def hardening_check(subject: DoctorSubject) -> Check:
    """Whether the running server locked its memory and is not dumpable."""
    pid = server_pid(subject)
    if pid is None:
        return Check(
            "server hardening",
            "ok",
            "no server is running (gwvault serve hardens"
            " itself as it starts: core limit 0, not dumpable, memory locked)",
        )
    locked, uid = parse_status(read_kernel_text(PROC / f"{pid}/status"))
    if locked is None or uid is None:
        return Check("server hardening", "warn", f"cannot read /proc/{pid}/status")
    try:
        owner = os.stat(PROC / str(pid)).st_uid
    except OSError:
        owner = None
    if uid == 0:
        dumpable = "runs as root, so whether it is dumpable is not visible from here"
    elif owner == 0:
        dumpable = "not dumpable"
    else:
        dumpable = "DUMPABLE (another process of its user may read its memory)"
    summary = f"the server (pid {pid}): {dumpable}; "
    if locked == 0:
        return Check(
            "server hardening", "warn", summary + "memory NOT locked (may be swapped)", _LOCK_FIX
        )
    if owner != 0 and uid != 0:
        return Check(
            "server hardening",
            "warn",
            summary + f"{locked} kB locked",
            "restart it with this gwvault: serve marks itself not dumpable",
        )
    return Check("server hardening", "ok", summary + f"memory locked ({locked} kB)")
