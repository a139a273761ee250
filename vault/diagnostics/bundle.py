"""Assembling the diagnostics zip and writing it: a new file, 0600, never over another.

The members are made in memory first (a few hundred KiB at most), so a
failure leaves no file; the file is then created exclusively without
following a link (``create_private_file``), so an existing path, a planted
symlink or a FIFO is refused, never written through.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_keys.errors import InvalidInputError, VaultError
from agent_keys.private_files import create_private_file
from vault.audit.incremental import verify_since_mark
from vault.diagnostics import members
from vault.doctor.checks import DoctorSubject
from vault.doctor.run import run_doctor
from vault.gateway import Gateway
from vault.keys.backup_state import backup_view

MEMBERS = (
    "versions.json",
    "doctor.json",
    "status.json",
    "settings.json",
    "failed-tests.json",
    "audit-verify.json",
    "server-log.txt",
)


def write_bundle(subject: DoctorSubject, out: Path) -> list[str]:
    """Write the bundle to the new file ``out``; returns its member names.

    ``InvalidInputError`` when ``out`` exists (whatever it is) or cannot be
    created; nothing is written then.
    """
    refuse_existing(out)
    contents = bundle_members(subject)
    data = _zipped(contents, datetime.datetime.now(datetime.UTC))
    try:
        create_private_file(out, data)
    except FileExistsError as e:
        raise InvalidInputError(f"{out} exists; not overwriting it") from e
    except OSError as e:
        raise InvalidInputError(f"cannot write {out}: {e.strerror}") from e
    return list(contents)


def refuse_existing(out: Path) -> None:
    """Refuse before any work an ``out`` that exists (a file, a link, a FIFO, a directory)."""
    if os.path.lexists(out):
        raise InvalidInputError(f"{out} exists; not overwriting it")
    if not out.parent.is_dir():
        raise InvalidInputError(f"cannot write {out}: its directory does not exist")


def bundle_members(subject: DoctorSubject) -> dict[str, bytes]:
    """Every member's bytes, by name (``MEMBERS``); what the vault could not give says why."""
    report = run_doctor(subject)
    gateway = _opened(subject)
    contents = {
        "versions.json": _json(members.versions(gateway)),
        "doctor.json": _json(report.view()),
        "status.json": _json(_from_vault(gateway, _status)),
        "settings.json": _json(_from_vault(gateway, members.settings)),
        "failed-tests.json": _json(_from_vault(gateway, members.failed_tests)),
        "audit-verify.json": _json(_from_vault(gateway, _audit_verdict)),
        "server-log.txt": members.server_log().encode("utf-8"),
    }
    assert tuple(contents) == MEMBERS  # noqa: S101 - the README lists MEMBERS
    return contents


def _status(gateway: Gateway) -> dict[str, Any]:
    return {**gateway.status(), "backup": backup_view(gateway)}


def _audit_verdict(gateway: Gateway) -> dict[str, object]:
    return verify_since_mark(gateway, by="diagnostics").to_dict()


def _opened(subject: DoctorSubject) -> Gateway | None:
    try:
        return subject.gateway()
    except VaultError:
        return None


def _from_vault(gateway: Gateway | None, read: Callable[[Gateway], Any]) -> Any:
    if gateway is None:
        return {"unavailable": "the vault did not open (see doctor.json, the store check)"}
    try:
        return read(gateway)
    except VaultError as e:
        return {"unavailable": " ".join(str(e).split())}


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _zipped(contents: dict[str, bytes], now: datetime.datetime) -> bytes:
    buffer = io.BytesIO()
    stamp = now.timetuple()[:6]
    # Stored, not deflated: what is in the file can be read (and grepped) as it is.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name, data in contents.items():
            info = zipfile.ZipInfo(f"gwvault-diagnostics/{name}", date_time=stamp)
            info.external_attr = 0o600 << 16
            bundle.writestr(info, data)
    return buffer.getvalue()
