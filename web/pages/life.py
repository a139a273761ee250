"""The owner's dates on the pages: the credential form's fields, and the Due page.

The Due page is ``gwvault credentials due`` and GET /api/v1/due: the same
rows, soonest first, with the owner's contact.  ``?within=`` is read as the
API reads it; an empty one (the form's) means the default.
"""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from vault.credential_due import due_report, parse_within
from vault.format.life_input import (
    DEFAULT_WITHIN,
    MAX_CONTACT_CHARS,
    MAX_INSTANT_CHARS,
    describe_period,
)
from web.access import gateway, require
from web.pages.blueprint import pages
from web.query_args import query_arguments


@pages.get("/due")
def due() -> str:
    require("credentials.read")
    within = query_arguments(request.args, ("within",), blank_is_unset=True).get(
        "within", DEFAULT_WITHIN
    )
    rows = due_report(gateway(), parse_within(within))
    return render_template("due.html", rows=rows, within=within)


def life_form_values(record: dict[str, Any] | None) -> dict[str, Any]:
    """The form's fields of a stored credential's dates, as a person would type
    them (the rotation period in days, not seconds), and the fields' limits."""
    record = record or {}
    return {
        "expires_at": record.get("expires_at") or "",
        "rotate_every": period(record.get("rotate_every")),
        "contact": record.get("contact") or "",
        "instant_chars": MAX_INSTANT_CHARS,
        "contact_chars": MAX_CONTACT_CHARS,
    }


@pages.app_template_filter("period")
def period(seconds: int | None) -> str:
    """A rotation period as typed (``90d``, ``36h``); empty when there is none."""
    return describe_period(seconds) if seconds else ""
