"""The audit sinks check: is the trail leaving the machine as it is written?

Without a sink, a vault file rolled back to an older copy (with its trail)
goes unnoticed (T-AU-12); a block sink that fails refuses every change; a
buffer sink that fails lets changes go on while its copy falls behind.
"""

from __future__ import annotations

from vault.audit.sinks.standing import sink_lags
from vault.doctor.checks import Check, DoctorSubject


def sinks_check(subject: DoctorSubject) -> Check:
    """Each sink's lag and failure, from its sealed rows (the vault unlocked)."""
    lags = sink_lags(subject.gateway(), checked=True)
    if not lags:
        return Check(
            "audit sinks",
            "warn",
            "no audit sink: the trail stays on this machine, so a"
            " rolled-back vault file goes unnoticed",
            "gwvault audit sink add NAME --syslog HOST:PORT --ca-file CA.pem"
            " (or --webhook https://...)",
        )
    failing = [lag for lag in lags if lag.failing_since]
    if not failing:
        shown = ", ".join(f"{lag.name} ({lag.policy}, {lag.behind} behind)" for lag in lags)
        return Check("audit sinks", "ok", f"sending: {shown}")
    blocked = any(lag.policy == "block" for lag in failing)
    shown = "; ".join(
        f"{lag.name} ({lag.policy}) failing since {lag.failing_since},"
        f" {lag.behind} behind: {lag.last_error}"
        for lag in failing
    )
    fix = "make the sink reachable again, then: gwvault audit sink send"
    if blocked:
        return Check("audit sinks", "fail", f"{shown} (changes are refused)", fix)
    return Check("audit sinks", "warn", shown, fix)
