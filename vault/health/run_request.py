"""Asking for every credential to be tested now, from the API.

A run over many credentials takes minutes, longer than a request should hold
a web worker, so the API does not run it: it records when it was asked
(``health_run_requested_at``, a sealed setting, audited), and the scheduler
(``vault.health.checks.due_names``) then counts every enabled credential last
tested before that time as due, at its next tick, within
``web.housekeeping.HEALTH_TICK_SECONDS``.  The results arrive as the
scheduler's do: in each credential's status, the trail and the sinks.
``credentials test --all`` at the CLI runs the same checks at once instead.

Sealed, so a database writer cannot keep every credential due (a stream of
logins at the company's databases) by planting a time in the future; a time
after now is not honoured anyway.
"""

from __future__ import annotations

import datetime

from vault.access.callers import Caller
from vault.gateway import Gateway

REQUESTED_SETTING = "health_run_requested_at"


def request_run(gateway: Gateway, caller: Caller | None) -> str:
    """Record that every enabled credential is to be tested now (an admin's act,
    decided inside the write); returns the time recorded."""
    at = gateway.context.now_iso()
    with gateway.store.write():
        if caller is not None:
            caller.authorize(gateway, "credentials.test-all")
        gateway.rows.set_setting(REQUESTED_SETTING, at)
        gateway.audit.record("credentials.test-all-requested", None, requested_at=at)
    return at


def requested_since(gateway: Gateway) -> datetime.datetime | None:
    """When a run was last asked for (sealed: ``TamperedRowError`` if altered),
    if it is not in the future; None when never, or unreadable."""
    raw = gateway.rows.setting(REQUESTED_SETTING)
    if raw is None:
        return None
    try:
        at = datetime.datetime.fromisoformat(raw)
    except ValueError:
        return None
    if at.tzinfo is None or at > gateway.context.clock():
        return None
    return at
