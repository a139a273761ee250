"""The list of doctor checks, in the order they are shown, and running them."""

from __future__ import annotations

from vault.doctor.checks import DoctorCheck, DoctorReport, DoctorSubject, run_check
from vault.doctor.files import data_dir_check
from vault.doctor.server_process import hardening_check
from vault.doctor.sinks import sinks_check
from vault.doctor.system import clock_sync_check, core_dump_check, swap_check
from vault.doctor.vault_state import (
    audit_check,
    backup_check,
    gateway_certificate_check,
    store_check,
    store_clock_check,
    tls_check,
)

# Independent checks: each looks at one thing and can be added or removed
# alone.
CHECKS: tuple[tuple[str, DoctorCheck], ...] = (
    ("data dir", data_dir_check),
    ("swap", swap_check),
    ("core dumps", core_dump_check),
    ("server hardening", hardening_check),
    ("clock sync", clock_sync_check),
    ("store", store_check),
    ("store clock", store_clock_check),
    ("audit trail", audit_check),
    ("audit sinks", sinks_check),
    ("TLS certificate", tls_check),
    ("gateway certificate", gateway_certificate_check),
    ("key backup", backup_check),
)


def run_doctor(subject: DoctorSubject) -> DoctorReport:
    """Every check of ``CHECKS`` on ``subject``; never raises for what a check finds."""
    return DoctorReport([run_check(name, check, subject) for name, check in CHECKS])
