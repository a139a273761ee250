"""A stored credential's test history, as the audit trail holds it.

Every test of a stored credential is a ``credential.tested`` entry (reason,
trigger, the server's expiry, the driver's words) and every change of status
a ``credential.status-changed`` entry: the trail is the history, MACed and
chained, so it needs no table of its own.  Tests of a sealed value under the
same name (``stored`` false: an entry link's, a put's preview) are left out.
"""

from __future__ import annotations

from typing import Any

from agent_keys.errors import InvalidInputError
from vault.audit.log import MAX_LIMIT
from vault.connectors.connection import SUMMARIES
from vault.format.audit_chain import AuditEntry
from vault.format.strict_json import parse_json_object
from vault.gateway import Gateway
from vault.health.status import TESTED
from vault.names import check_datasource_name
from vault.notify.events import EVENT_KINDS

CHANGED = EVENT_KINDS[0]  # credential.status-changed
DEFAULT_LIMIT = 50


def test_history(
    gateway: Gateway, name: str, *, admin: bool, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """The newest ``limit`` tests and status changes of credential ``name``,
    newest first; the driver's words only for an admin."""
    check_datasource_name(name)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"the limit must be a whole number from 1 to {MAX_LIMIT}")
    entries = gateway.store.find_audit(
        "target = ? AND action IN (?, ?)", [name, TESTED, CHANGED], limit * 2
    )
    shown: list[dict[str, Any]] = []
    for entry in entries:
        try:
            details = parse_json_object(entry.details)
        except ValueError:
            continue  # not gwvault's writing: ``audit verify`` reports it
        if entry.action == TESTED and details.get("stored") is not True:
            continue
        shown.append(_view(entry, details, admin=admin))
        if len(shown) == limit:
            break
    return shown


# pytest would collect an imported ``test_*`` function as a test; it is not one.
test_history.__test__ = False  # type: ignore[attr-defined]


def _view(entry: AuditEntry, details: dict[str, Any], *, admin: bool) -> dict[str, Any]:
    seq, at = entry.seq, entry.at
    if entry.action == CHANGED:
        return {"seq": seq, "at": at, "event": "status-changed",
                "old_reason": details.get("old_reason"), "new_reason": details.get("new_reason"),
                "trigger": details.get("trigger")}  # fmt: skip
    reason = details.get("reason")
    view = {
        "seq": seq, "at": at, "event": "tested", "actor": entry.actor,
        "trigger": details.get("trigger", "manual"),  # entries from before the scheduler
        "reason": reason,
        "summary": SUMMARIES.get(reason) if isinstance(reason, str) else None,  # type: ignore[call-overload]
        "server_expires_at": details.get("server_expires_at"),
    }  # fmt: skip
    if admin:
        view["detail"] = details.get("detail")
    return view
