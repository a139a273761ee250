"""The data dir's modes and owners: 0700 and 0600, the running user's, no link.

``DataDir.open`` already refuses a directory others may write to (T-DD-1);
this check also finds what it lets through: a database, WAL, key file or
password file that others may read (a copied or restored file keeps the mode
it was given), a file owned by another user, a symlink planted in the dir.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vault.doctor.checks import Check, DoctorSubject

_MAX_ENTRIES = 200  # a data dir holds a handful of files


def data_dir_check(subject: DoctorSubject) -> Check:
    """Every problem with the data dir's and its files' modes and owners, one line."""
    path = subject.data_dir
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Check("data dir", "fail", f"{path} does not exist", "gwvault init --name NAME")
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return Check(
            "data dir",
            "fail",
            f"{path} is not a directory (a link or a file)",
            "point --data-dir at the real directory",
        )
    problems, fixes = _problems(path, st, 0o700)
    with os.scandir(path) as entries:
        for count, entry in enumerate(entries):
            if count >= _MAX_ENTRIES:
                break
            found, fix = _problems(Path(entry.path), entry.stat(follow_symlinks=False), 0o600)
            problems += found
            fixes += fix
    if problems:
        return Check("data dir", "fail", "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    return Check(
        "data dir", "ok", f"{path} is 0700 and its files 0600, all owned by uid {os.geteuid()}"
    )


def _problems(path: Path, st: os.stat_result, most: int) -> tuple[list[str], list[str]]:
    """What is wrong with one entry (mode above ``most``, owner, kind) and the fixes."""
    if stat.S_ISLNK(st.st_mode):
        return [f"{path.name} is a symlink"], [f"rm {path} (gwvault never makes links)"]
    problems, fixes = [], []
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        most = 0o700
    if mode & ~most & 0o777:
        problems.append(f"{path.name} is {mode:04o} (others may read or write it)")
        fixes.append(f"chmod {most:o} {path}")
    if st.st_uid != os.geteuid():
        problems.append(f"{path.name} belongs to uid {st.st_uid}, not the running uid")
        fixes.append(f"chown {os.geteuid()} {path} (or run gwvault as its owner)")
    return problems, fixes
