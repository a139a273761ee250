"""Assembling the diagnostics zip, in memory (a few hundred KiB at most).

The CLI writes it (``write_private_output``: a new file, 0600, created
exclusively without following a link), so a failure while the members are
made leaves no file, and an existing path, a planted symlink or a FIFO is
refused, never written through.
"""

from __future__ import annotations

import datetime
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

from agent_keys.errors import VaultError
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


def build_bundle(subject: DoctorSubject) -> tuple[list[str], bytes]:
    """The bundle's member names and the zip's bytes, made in memory."""
    contents = bundle_members(subject)
    return list(contents), _zipped(contents, datetime.datetime.now(datetime.UTC))


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
