"""A one-time message after a change, shown on the next page this browser renders.

Messages travel in a cookie for exactly one page view, as a code from
``MESSAGES`` and the name of the object, never as text: a link from elsewhere
cannot make the page say something gwvault did not say (a query parameter
could), and the cookie's ``__Host-`` prefix and ``SameSite=Strict`` keep other
sites from setting or sending it.  Pages and the API (a browser's save) set it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, g, request
from werkzeug.wrappers import Response as BaseResponse

from web.access import session_cookie

FLASH_COOKIE_PREFIX = "__Host-gwvault-flash-"
# Seconds a message waits for the page it is meant for (the redirect's target).
FLASH_MAX_AGE = 60
MAX_SUBJECT = 128

# What happened, by code; {subject} is the object's name, escaped when rendered.
MESSAGES: dict[str, str] = {
    "credential-saved": "Saved credential {subject}.",
    "credential-deleted": "Deleted credential {subject}; it can be restored from Deleted"
    " credentials until it is purged.",
    "credential-restored": "Restored credential {subject}.",
    "credential-disabled": "Disabled credential {subject}; it is neither used nor tested.",
    "credential-enabled": "Enabled credential {subject}.",
    "credential-purged": "Purged credential {subject}; its data key was destroyed.",
    "user-added": "Added user {subject}.",
    "user-removed": "Removed user {subject}; their sessions are closed.",
    "user-role-changed": "Changed the role of {subject}.",
    "password-changed": "Changed the password of {subject}; their other sessions are closed.",
    "own-password-changed": "Changed your password, {subject}; your other sessions are closed.",
    "account-removed": "Your account was removed and you are signed out.",
    "token-revoked": "Revoked API token {subject}.",
    "entry-link-revoked": "Revoked the entry link for {subject}.",
    "signed-out": "Signed out.",
}


@dataclass(frozen=True)
class Flash:
    text: str


def flash(response: BaseResponse, code: str, subject: str = "") -> BaseResponse:
    """Show ``MESSAGES[code]`` on the next page this browser renders."""
    if code not in MESSAGES:
        raise ValueError(f"no flash message {code!r}")
    response.set_cookie(
        _cookie_name(),
        f"{code}:{subject[:MAX_SUBJECT]}",
        max_age=FLASH_MAX_AGE,
        secure=True,
        httponly=True,
        samesite="Strict",
        path="/",
    )
    return response


def pending_flash() -> Flash | None:
    """The message this page view shows, if one waits (it is then cleared)."""
    raw = request.cookies.get(_cookie_name())
    if raw is None:
        return None
    g.flash_shown = True
    code, _, subject = raw.partition(":")
    template = MESSAGES.get(code)
    if template is None or len(subject) > MAX_SUBJECT or not subject.isprintable():
        return None
    return Flash(template.format(subject=subject))


def clear_shown_flash(response: Response) -> Response:
    """After a page showed the message, the cookie goes (an after_request hook)."""
    if g.get("flash_shown") and request.cookies.get(_cookie_name()) is not None:
        response.delete_cookie(
            _cookie_name(), path="/", secure=True, httponly=True, samesite="Strict"
        )
    return response


def _cookie_name() -> str:
    # Per port, like the session cookie: two gateways on one host keep theirs apart.
    return FLASH_COOKIE_PREFIX + session_cookie().rsplit("-", 1)[-1]
