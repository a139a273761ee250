"""The vault checks: the store, the audit trail, the certificates and their backup.

Each opens the vault through ``DoctorSubject.gateway`` (once for all of them);
the store check says why when it does not open, and the others then say they
were not checked (``run_check``).
"""

from __future__ import annotations

import datetime
import shutil
import time

from vault.audit.incremental import verify_since_mark
from vault.doctor.checks import Check, DoctorSubject, Status
from vault.keys.backup_state import backup_state
from vault.keys.certificates import EXPIRY_WARNING
from vault.keys.tls import TlsService

LOW_DISK_BYTES = 1 << 30  # a restore, a rotation and WAL growth need room
FULL_DISK_BYTES = 100 << 20
CLOCK_SKEW_WARN_MS = 2_000  # a lease is a few seconds; a skew near it confuses who holds it
CLOCK_SKEW_FAIL_MS = 30_000


def store_check(subject: DoctorSubject) -> Check:
    """The store opens at this gwvault's schema, is not damaged, and has disk room."""
    try:
        gateway = subject.gateway()
    except Exception as e:
        return Check(
            "store",
            "fail",
            f"the vault did not open: {' '.join(str(e).split())}",
            "fix what the message says; gwvault restore --bundle FILE if it is lost",
        )
    store = gateway.store
    damage = store.engine.damage()
    if damage is not None:
        return Check(
            "store",
            "fail",
            f"{store.location} is damaged: {damage}",
            "stop the server and restore from a recovery bundle: gwvault restore",
        )
    free = shutil.disk_usage(subject.data_dir).free
    where = f"{store.engine_kind} store at schema {store.setting('schema_version')}"
    if free < LOW_DISK_BYTES:
        status: Status = "fail" if free < FULL_DISK_BYTES else "warn"
        return Check(
            "store",
            status,
            f"{where}; only {free >> 20} MiB free in the data dir's file system",
            "free disk space there (a write that fails is refused)",
        )
    return Check("store", "ok", f"{where} opens, quick check ok, {free >> 30} GiB free")


def store_clock_check(subject: DoctorSubject) -> Check:
    """This machine's clock against the store's (a cluster's one clock)."""
    gateway = subject.gateway()
    if gateway.store.engine_kind == "sqlite":
        return Check("store clock", "ok", "one machine: the store's clock is this machine's")
    skew = abs(gateway.store.engine.database_time_ms() - int(time.time() * 1000))
    summary = f"this machine's clock is {skew} ms from the shared store's"
    if skew < CLOCK_SKEW_WARN_MS:
        return Check("store clock", "ok", summary)
    status: Status = "fail" if skew >= CLOCK_SKEW_FAIL_MS else "warn"
    return Check("store clock", status, summary, "sync both clocks with NTP")


def audit_check(subject: DoctorSubject) -> Check:
    """The trail since the last full check (a full check when there is none)."""
    report = verify_since_mark(subject.gateway(), by="doctor")
    if report.ok:
        return Check("audit trail", "ok", report.summary())
    return Check(
        "audit trail",
        "fail",
        report.summary(),
        "run gwvault audit verify; if it fails, the vault was tampered with:"
        " restore it from a recovery bundle",
    )


def tls_check(subject: DoctorSubject) -> Check:
    """The HTTPS endpoint's certificate: warn within 30 days of expiry, fail after."""
    gateway = subject.gateway()
    not_after = datetime.datetime.fromisoformat(TlsService(gateway).show()["not_after"])
    return expiry_check(
        "TLS certificate",
        not_after,
        gateway.context.clock(),
        "gwvault tls regenerate (or gwvault tls import a CA-signed one)",
    )


def gateway_certificate_check(subject: DoctorSubject) -> Check:
    """The gateway certificate sealers use: warn within 30 days of expiry, fail after."""
    gateway = subject.gateway()
    return expiry_check(
        "gateway certificate",
        gateway.certificate().not_after,
        gateway.context.clock(),
        "gwvault cert rotate, then give sealers the new certificate",
    )


def backup_check(subject: DoctorSubject) -> Check:
    """A recovery bundle or PKCS#12 export newer than the last key change (the verified trail)."""
    state = backup_state(subject.gateway())
    if not state.needed and state.last_backup is not None:
        last = state.last_backup
        return Check("key backup", "ok", f"backed up: {last.action} at {last.at}")
    reminder = state.reminder or "no backup is known"
    summary, _, fix = reminder.partition("; run: ")
    return Check("key backup", "warn", summary, fix)


def expiry_check(
    name: str, not_after: datetime.datetime, now: datetime.datetime, fix: str
) -> Check:
    left = not_after - now
    if left.total_seconds() <= 0:
        return Check(name, "fail", f"expired at {not_after.isoformat()}", fix)
    if left <= EXPIRY_WARNING:
        return Check(name, "warn", f"expires in {left.days} days ({not_after.isoformat()})", fix)
    return Check(name, "ok", f"valid until {not_after.isoformat()} ({left.days} days)")
