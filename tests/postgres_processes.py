"""The operating-system side of a private PostgreSQL cluster: binaries, owner, processes.

initdb and postgres refuse to run as root, so under root a test cluster belongs
to the ``postgres`` OS user and every server tool runs as that user.  A tool
that fails raises ``PostgresToolError`` with the tail of its output; setting a
cluster up turns that into ``require_service`` (a skip, or a failure in CI).
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from glob import glob
from pathlib import Path

from tests.service_fixtures import require_service

TOOL_SECONDS = 90
EXIT_SECONDS = 10


class PostgresToolError(RuntimeError):
    """A PostgreSQL server tool (initdb, pg_ctl, pg_basebackup) exited with an error."""


@functools.cache
def newest_postgres_bin_dir() -> Path:
    """The bin directory of the newest installed PostgreSQL server (where initdb is)."""
    candidates = {Path(p) for p in glob("/usr/lib/postgresql/*/bin")}
    if on_path := shutil.which("initdb"):
        candidates.add(Path(on_path).resolve().parent)
    usable = [d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()]
    if not usable:
        require_service("PostgreSQL server binaries (initdb, pg_ctl) not found")
    return max(usable, key=_postgres_version)


def _postgres_version(bin_dir: Path) -> tuple[int, int]:
    version_call = [str(bin_dir / "initdb"), "--version"]
    done = subprocess.run(version_call, capture_output=True, text=True, check=False)
    found = re.search(r"(\d+)(?:\.(\d+))?", done.stdout)
    return (int(found[1]), int(found[2] or 0)) if found else (0, 0)


def cluster_owner() -> pwd.struct_passwd:
    """The OS user a test cluster runs as: ourselves, or ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        require_service("running as root and no 'postgres' OS user to own a test cluster")


def write_owned(path: Path, text: str, owner: pwd.struct_passwd | None = None) -> Path:
    """Write a new 0600 file (a key, a password file), owned by ``owner`` if given."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text + "\n")
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def run_as(
    owner: pwd.struct_passwd, cwd: Path, *args: str | Path, env: Mapping[str, str] | None = None
) -> None:
    """Run a server tool as the cluster owner; subprocess drops uid, gid and groups itself.

    The caller's PG* variables are dropped (they would point the tool at
    another server); ``env`` adds the tool's own, such as ``PGPASSFILE``.
    """
    other = owner.pw_uid != os.geteuid()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=clean | {"HOME": str(cwd)} | dict(env or {}),
        capture_output=True, text=True, timeout=TOOL_SECONDS, check=False,
        user=owner.pw_uid if other else None, group=owner.pw_gid if other else None,
        extra_groups=[] if other else None,
    )  # fmt: skip
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).split())[-500:]
        raise PostgresToolError(f"{Path(args[0]).name} {args[1]} failed: {tail}")


def postmaster_pid(data: Path) -> int | None:
    """The pid of the cluster's running postmaster, or None (no pid file, or a stale one)."""
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().split()[0])
        return pid if _alive(pid) else None
    return None


def kill_postmaster(pid: int) -> None:
    """SIGKILL the postmaster and all its children at once, as a crashed host would.

    Each child is its own process group (postgres calls setsid), so a group
    kill would miss them; left alone they would linger until they noticed the
    postmaster gone.  The postmaster is stopped first so it forks no child
    after the list is taken.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGSTOP)
    victims = [pid, *_children_of(pid)]
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + EXIT_SECONDS
    while any(_alive(victim) for victim in victims):
        if time.monotonic() > deadline:
            raise PostgresToolError(f"postmaster {pid} or a child survived SIGKILL")
        time.sleep(0.01)


def _children_of(parent: int) -> list[int]:
    children = []
    for stat in glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name in parentheses may hold spaces; the fields after it do not.
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                children.append(int(Path(stat).parent.name))
    return children


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: nothing may reap it in a container)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
