"""Keep the keys this process unlocks out of core dumps, swap and other processes.

``gwvault serve`` holds the unwrapped gateway master key for as long as it runs,
so it calls ``harden_process`` before it reads a PIN or unlocks anything, and
each worker it forks calls ``lock_memory`` again (memory locks are not
inherited across fork(2); the core limit and the dumpable flag are).

- ``RLIMIT_CORE`` soft and hard 0: no core file, and the process cannot raise
  the limit again (T-PROC-1).
- ``prctl(PR_SET_DUMPABLE, 0)``: no core even through a ``core_pattern`` pipe
  helper, and a process of the same user can neither ptrace this one nor read
  its ``/proc/PID/mem`` or ``environ`` (T-PROC-3).  The process itself still
  reads its own ``/proc/self/fd`` (``private_files.memory_files`` needs that).
- ``mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)``: no page of this process
  is written to swap (T-PROC-2), but only where the memory-lock limit is
  unlimited or the process holds CAP_IPC_LOCK.  Under a finite limit every
  later allocation past it would fail (thread stacks and malloc arenas count
  by their size, not their use), so the process carries on unlocked and says
  why in ``hardening_state``.  ``MCL_ONFAULT`` locks pages as they are touched:
  the 8 MiB a thread's stack reserves is not made resident up front.

Linux only; elsewhere each step is a no-op that ``hardening_state`` reports.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
from typing import TypedDict

_PR_SET_DUMPABLE = 4  # linux/prctl.h
_PR_GET_DUMPABLE = 3
_MCL_CURRENT, _MCL_FUTURE, _MCL_ONFAULT = 1, 2, 4  # asm-generic/mman-common.h
_CAP_IPC_LOCK = 14  # linux/capability.h


class HardeningState(TypedDict):
    """What took effect in this process (``gwvault doctor`` shows it)."""

    supported: bool
    """Linux: the calls below exist; elsewhere every field says "not done"."""
    core_limit: list[int]
    """[soft, hard] RLIMIT_CORE in bytes, -1 for unlimited; [0, 0] is hardened."""
    dumpable: int | None
    """prctl(PR_GET_DUMPABLE): 0 is hardened, 1 (or 2) is not, None unknown."""
    memory_locked: bool
    """This process called mlockall successfully (a fork must call it again)."""
    memory_lock_detail: str
    """Why memory is or is not locked, and what to change."""
    memlock_limit: int | None
    """Soft RLIMIT_MEMLOCK in bytes; None for unlimited."""


# pid -> (locked, how or why not): a forked child is not the process that locked.
_lock_outcome: dict[int, tuple[bool, str]] = {}


def harden_process() -> HardeningState:
    """Core dumps off, not dumpable, memory locked where the limit allows; what took effect.

    Never raises: a step the system refuses is reported, not fatal, so a
    machine without memory locking still serves (``gwvault doctor`` says so).
    """
    forbid_core_dumps()
    lock_memory()
    return hardening_state()


def forbid_core_dumps() -> None:
    """RLIMIT_CORE to 0 (soft and hard) and PR_SET_DUMPABLE to 0."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # lowering a limit is always allowed
    make_undumpable()


def make_undumpable() -> None:
    """PR_SET_DUMPABLE to 0: no core file (with the default ``fs.suid_dumpable``) and
    no ptrace by the same user.  Undone by execve(2), so programs this process
    runs are not affected; kept across fork(2)."""
    libc = _libc()
    if libc is not None:
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def lock_memory() -> bool:
    """mlockall this process's pages, present and future, where the limit allows it.

    Call it again after fork(2).  Returns whether the memory is locked.
    """
    locked, detail = _try_mlockall()
    _lock_outcome[os.getpid()] = (locked, detail)
    return locked


def _try_mlockall() -> tuple[bool, str]:
    libc = _libc()
    if libc is None:
        return False, f"memory locking is not supported on {sys.platform}"
    limit = _memlock_limit()
    if limit is not None and not _holds_ipc_lock():
        return False, (
            f"RLIMIT_MEMLOCK is {limit // 1024} KiB: locking every page would make later"
            " allocations fail; set it to unlimited (LimitMEMLOCK=infinity in the unit)"
        )
    if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE | _MCL_ONFAULT) != 0:
        return False, f"mlockall failed: {os.strerror(ctypes.get_errno())}"
    why = "unlimited RLIMIT_MEMLOCK" if limit is None else "CAP_IPC_LOCK"
    return True, f"mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) ({why})"


def hardening_state() -> HardeningState:
    """What the kernel says of this process now (core limit, dumpable) and what
    ``lock_memory`` achieved in it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    libc = _libc()
    locked, detail = _lock_outcome.get(os.getpid(), (False, ""))
    if not detail:
        detail = (
            "not locked in this process: a fork of one that locked (call lock_memory)"
            if _lock_outcome
            else "lock_memory() has not run in this process"
        )
    return HardeningState(
        supported=libc is not None,
        core_limit=[_bytes(soft), _bytes(hard)],
        dumpable=libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) if libc is not None else None,
        memory_locked=locked,
        memory_lock_detail=detail,
        memlock_limit=_memlock_limit(),
    )


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True)


def _memlock_limit() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return None if soft == resource.RLIM_INFINITY else soft


def _bytes(limit: int) -> int:
    return -1 if limit == resource.RLIM_INFINITY else limit


def _holds_ipc_lock() -> bool:
    """CAP_IPC_LOCK in the effective set (root has it): the limit does not bind."""
    try:
        with open("/proc/self/status") as status:  # 0444 even when not dumpable
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_IPC_LOCK & 1)
    except OSError:
        pass
    return False
