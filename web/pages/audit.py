"""The audit trail's page: the verdict, a filter form and one page of events."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import render_template, request, url_for

from agent_keys.errors import InvalidInputError
from vault.audit.incremental import verify_since_mark
from vault.audit.log import DEFAULT_LIMIT, AuditLog, AuditQuery, entry_view
from web.access import gateway, require
from web.api import audit_query, newer_after, next_before
from web.pages.audit_rows import actor_view, details_view, is_identifier
from web.pages.blueprint import pages


@pages.get("/audit")
def audit() -> tuple[str, int]:
    """The trail's verdict, a filter form and one page of events, newest first.

    Bad filter input re-renders the form with the message (400), so the
    auditor can correct it; the verdict still shows.
    """
    principal = require("audit.read")
    log = AuditLog(gateway())
    report = verify_since_mark(gateway(), f"web:{principal.actor}")
    # As typed (the URL keeps them): shown again after a page change or an error.
    form = {name: request.args.get(name, "") for name in ("credential", "action", "since")}
    try:
        query = audit_query(request.args, blank_is_unset=True)
    except InvalidInputError as e:
        page = render_template("audit.html", report=report, form=form, error=str(e), query=None)
        return page, 400
    found = log.find(query)
    events = [entry_view(entry) for entry in found]
    for event, entry in zip(events, found, strict=True):
        event["actor"] = actor_view(entry.actor)
        event["details"] = details_view(event["details"])
        event["target_is_identifier"] = entry.target is not None and is_identifier(entry.target)
    older, newer = next_before(found, query), newer_after(found, query)
    paged = query.before_seq is not None or query.after_seq is not None
    page = render_template(
        "audit.html",
        report=report,
        form=form,
        error=None,
        query=query,
        page_size=query.limit if query.limit != DEFAULT_LIMIT else None,
        events=events,
        older_url=_audit_url(query, before=older) if older is not None else None,
        newer_url=_audit_url(query, after=newer) if newer is not None else None,
        newest_url=_audit_url(query) if paged else None,
    )
    return page, 200


def _audit_url(query: AuditQuery, **cursor: int) -> str:
    """This filter at another page (since as checked: normalised to UTC)."""
    args = {"credential": query.credential, "action": query.action, "since": query.since}
    args.update({name: str(seq) for name, seq in cursor.items()})
    if query.limit != DEFAULT_LIMIT:
        args["limit"] = str(query.limit)
    kept = {name: value for name, value in args.items() if value is not None}
    return f"{url_for('pages.audit')}?{urlencode(kept)}"
