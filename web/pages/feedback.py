"""What a person sees after a refused or destructive change on a page: the form
again with its error, and a confirmation that names the object before anything
is destroyed.  (The message after a change is ``web.flash``.)"""

from __future__ import annotations

from flask import render_template

from agent_keys.errors import VaultError
from web.errors import status_for


def refused(template: str, error: VaultError, **context: object) -> tuple[str, int]:
    """The page again, with what was typed (``context``) and the error beside the
    form, at the error's status: a refused change loses nothing the person typed."""
    status, _code = status_for(error)
    return render_template(template, error=str(error), **context), status


def confirm(
    *,
    title: str,
    question: str,
    consequence: str,
    action_url: str,
    button: str,
    cancel_url: str,
    fields: dict[str, str] | None = None,
) -> str:
    """A page that asks before a destructive change, naming its object; the button
    posts to ``action_url`` with ``fields`` (and the CSRF token)."""
    return render_template(
        "confirm.html",
        title=title,
        question=question,
        consequence=consequence,
        action_url=action_url,
        button=button,
        cancel_url=cancel_url,
        fields=fields or {},
    )
