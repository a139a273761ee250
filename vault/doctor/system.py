"""The OS checks: swap, core dumps and the clock, from what the kernel says.

None needs the vault.  The parsers take the text of a /proc or /sys file and
are tested with hostile text; the checks read the real files.  A swapped-out
or dumped page of the server may hold the GMK or an opened secret (T-MEM-1),
so both are findings; a clock without NTP makes certificate times, audit
times and a cluster's lease wrong.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import stat
from dataclasses import dataclass
from pathlib import Path

from agent_keys.errors import VaultError
from vault.doctor.checks import Check, DoctorSubject
from vault.served_address import served_address

PROC = Path("/proc")
SYS_BLOCK = Path("/sys/dev/block")
CGROUP_ROOT = Path("/sys/fs/cgroup")
_MAX_PROC_TEXT = 64 * 1024
_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised
_NO_SWAP_FIX = (
    "swapoff -a and remove swap from /etc/fstab, or make the swap encrypted (dm-crypt),"
    " or run gwvault under the unit, whose MemorySwapMax=0 keeps it out of swap"
)
_CORE_FIX = (
    "run gwvault serve with core dumps off: LimitCORE=0 in the unit (ours sets it), or"
    " ulimit -c 0 in the shell that starts it"
)


@dataclass(frozen=True)
class SwapArea:
    path: str
    kind: str  # "partition" or "file"


def parse_swaps(text: str) -> list[SwapArea]:
    """The areas /proc/swaps lists (its header line first); malformed lines are skipped."""
    areas = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith("/"):
            areas.append(SwapArea(fields[0].replace("\\040", " "), fields[1]))
    return areas


def parse_core_limit(limits_text: str) -> tuple[int | None, int | None] | None:
    """(soft, hard) of "Max core file size" in a /proc/PID/limits text (None: unlimited);
    None when the line is missing or malformed."""
    for line in limits_text.splitlines():
        if line.startswith("Max core file size"):
            fields = line[len("Max core file size") :].split()
            if len(fields) < 2:
                return None
            try:
                return _limit(fields[0]), _limit(fields[1])
            except ValueError:
                return None
    return None


def _limit(text: str) -> int | None:
    return None if text == "unlimited" else int(text)


def swap_check(subject: DoctorSubject) -> Check:
    """Swap that is on and not encrypted, unless the server's cgroup may not swap."""
    areas = parse_swaps(read_kernel_text(PROC / "swaps"))
    if not areas:
        return Check("swap", "ok", "no swap is on")
    plain = [area.path for area in areas if not _encrypted(area)]
    if not plain:
        return Check("swap", "ok", f"swap is on, encrypted (dm-crypt): {_names(areas)}")
    pid = server_pid(subject)
    if pid is not None and _swap_forbidden(pid):
        return Check(
            "swap",
            "ok",
            f"swap is on ({', '.join(plain)}), but the server's"
            " cgroup may not use it (memory.swap.max 0)",
        )
    return Check(
        "swap",
        "warn",
        f"unencrypted swap is on: {', '.join(plain)}; a swapped-out"
        " page of the server may hold a key",
        _NO_SWAP_FIX,
    )


def core_dump_check(subject: DoctorSubject) -> Check:
    """The core-dump limit of the running server (else of this process, which a
    server started from the same shell inherits) and where a dump would go."""
    pid = server_pid(subject)
    whose = f"the server (pid {pid})" if pid is not None else "this shell (no server is running)"
    limits = (
        _own_core_limit()
        if pid is None
        else parse_core_limit(read_kernel_text(PROC / f"{pid}/limits"))
    )
    pattern = read_kernel_text(PROC / "sys/kernel/core_pattern").strip()[:200] or "core"
    goes = f"dumps go to {pattern!r}" + (" (a handler program)" if pattern.startswith("|") else "")
    if limits is None:
        return Check("core dumps", "warn", f"cannot read the core limit of {whose}", _CORE_FIX)
    soft, hard = limits
    if soft == 0:
        raisable = "" if hard == 0 else " (the hard limit allows raising it; LimitCORE=0 sets both)"
        return Check("core dumps", "ok", f"off for {whose}: core limit 0{raisable}")
    shown = "unlimited" if soft is None else f"{soft} bytes"
    return Check(
        "core dumps",
        "warn",
        f"on for {whose} (core limit {shown}); {goes}, and a dump of the server holds its keys",
        _CORE_FIX,
    )


def clock_sync_check(subject: DoctorSubject) -> Check:
    """Whether the kernel says the clock is synchronised (adjtimex, read-only)."""
    del subject
    state = _adjtimex_state()
    if state is None:
        return Check("clock sync", "warn", "cannot ask the kernel (no adjtimex here)")
    if state == _TIME_ERROR:
        return Check(
            "clock sync",
            "warn",
            "the kernel says the clock is not synchronised"
            " (no NTP): certificate and audit times may drift",
            "enable NTP: timedatectl set-ntp true (systemd-timesyncd), or run chronyd",
        )
    return Check("clock sync", "ok", "the kernel says the clock is synchronised (NTP)")


def _adjtimex_state() -> int | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    if not hasattr(libc, "adjtimex"):
        return None
    buffer = ctypes.create_string_buffer(512)  # struct timex with modes 0: only reads
    state = int(libc.adjtimex(buffer))
    return None if state < 0 else state


def _encrypted(area: SwapArea) -> bool:
    """Whether the block device under a swap area is, or sits on, a dm-crypt device."""
    if area.path.startswith("/dev/zram"):
        return True  # compressed RAM: never written to a disk
    try:
        st = os.stat(area.path)
    except OSError:
        return False
    device = st.st_rdev if stat.S_ISBLK(st.st_mode) else st.st_dev
    return _crypt_below(SYS_BLOCK / f"{os.major(device)}:{os.minor(device)}", depth=0)


def _crypt_below(node: Path, depth: int) -> bool:
    if depth > 8:  # device stacks are shallow; a loop in /sys is not followed
        return False
    if read_kernel_text(node / "dm/uuid").startswith("CRYPT-"):
        return True
    try:
        slaves = list((node / "slaves").iterdir())
    except OSError:
        return False
    # LVM or a filesystem on LUKS: the crypt device is a slave some levels down.
    return any(_crypt_below(slave, depth + 1) for slave in slaves)


def _swap_forbidden(pid: int) -> bool:
    """Whether the cgroup of ``pid`` may not swap (cgroup v2 memory.swap.max 0)."""
    for line in read_kernel_text(PROC / str(pid) / "cgroup").splitlines():
        if line.startswith("0::/"):
            limit = CGROUP_ROOT / line[4:] / "memory.swap.max"
            return ".." not in line and read_kernel_text(limit).strip() == "0"
    return False


def server_pid(subject: DoctorSubject) -> int | None:
    try:
        served = served_address(subject.data_dir)
    except (VaultError, OSError):  # an unreadable run file: no server known
        return None
    return None if served is None else served.pid


def _own_core_limit() -> tuple[int | None, int | None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    return _rlimit(soft), _rlimit(hard)


def _rlimit(value: int) -> int | None:
    return None if value == resource.RLIM_INFINITY else value


def _names(areas: list[SwapArea]) -> str:
    return ", ".join(area.path for area in areas)


def read_kernel_text(path: Path) -> str:
    """A small kernel file's text ('' when it cannot be read)."""
    try:
        with path.open("rb") as f:
            return f.read(_MAX_PROC_TEXT).decode("utf-8", "replace")
    except OSError:
        return ""
