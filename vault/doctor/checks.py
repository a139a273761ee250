"""What a doctor check returns, what it is handed, and how checks are run.

A check never raises: what it cannot look at is itself a finding.  The OS
checks need no vault; the vault checks open it through ``DoctorSubject``,
once, and each says so when it could not be opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent_keys.errors import AccessDeniedError, VaultError
from agent_keys.keystore import PinSource
from vault.gateway import Gateway

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One finding: ``fix`` says what to do (empty when there is nothing to do)."""

    name: str
    status: Status
    summary: str
    fix: str = ""

    def view(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class DoctorSubject:
    """What the checks look at: the data dir, and the vault in it opened once on demand."""

    data_dir: Path
    pin: PinSource
    open_vault: Callable[[Path, PinSource], Gateway]
    _gateway: Gateway | None = field(default=None, init=False)
    _error: VaultError | None = field(default=None, init=False)

    def gateway(self) -> Gateway:
        """The opened vault; if it did not open, the ``VaultError`` that said why, every time."""
        if self._error is not None:
            raise self._error
        if self._gateway is None:
            try:
                _check_owner(self.data_dir)
                self._gateway = self.open_vault(self.data_dir, self.pin)
            except VaultError as e:
                self._error = e
                raise
        return self._gateway

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()


def _check_owner(path: Path) -> None:
    """Refuse to open another user's vault: root running the doctor on the
    service's data dir would leave a root-owned WAL file the service cannot open."""
    try:
        owner = os.stat(path).st_uid
    except OSError:
        return  # opening says what is wrong
    if owner != os.geteuid():
        raise AccessDeniedError(
            f"{path} belongs to uid {owner}, not to this user (uid {os.geteuid()}); run the"
            " doctor as its owner (e.g. sudo -u gwvault gwvault doctor), so no file it"
            " makes belongs to someone else"
        )


DoctorCheck = Callable[[DoctorSubject], Check]


@dataclass(frozen=True)
class DoctorReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """No check failed (warnings do not fail the doctor)."""
        return all(check.status != "fail" for check in self.checks)

    def view(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.view() for check in self.checks]}

    def lines(self) -> list[str]:
        """The text form: a line per check, and under each problem one line saying what to do."""
        shown: list[str] = []
        for check in self.checks:
            shown.append(f"{check.status.upper():<4}  {check.name}: {_one_line(check.summary)}")
            if check.status != "ok" and check.fix:
                shown.append(f"      fix: {_one_line(check.fix)}")
        return shown


def run_check(name: str, check: DoctorCheck, subject: DoctorSubject) -> Check:
    """``check(subject)``; a check that raises is a finding, never a traceback."""
    try:
        return check(subject)
    except VaultError as e:
        return Check(name, "warn", f"not checked: {_one_line(str(e))}", "see the store check")
    except OSError as e:
        return Check(name, "warn", f"not checked: {e.strerror or type(e).__name__}")
    except Exception as e:
        # Only the type: an unexpected message might carry data not meant for a report.
        return Check(
            name,
            "fail",
            f"the check itself failed ({type(e).__name__})",
            "rerun with GWVAULT_DEBUG=1 and report it",
        )


def _one_line(text: str) -> str:
    """``text`` as one printable line: a file name or a database's message
    cannot start a line of its own (that would forge a finding)."""
    return "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))
