"""A signed-in user's own account: changing their own password.

The current password is proved first (counted like a failed sign-in when
wrong, so a session left open is no way to guess it).  The new password ends
the user's other sessions; the one it was changed from stays signed in.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from agent_keys.errors import InvalidInputError, VaultError
from agent_keys.recovery_key import MAX_RECOVERY_KEY_CHARS, MIN_RECOVERY_KEY_CHARS
from agent_keys.secret import Secret
from vault.access.accounts import Accounts
from vault.access.bearer_secrets import bearer_hash
from web.access import gateway, require, session_cookie, web_caller
from web.flash import flash
from web.pages.blueprint import pages
from web.pages.feedback import refused

# The rule check_passphrase_policy applies, said next to every new-password field.
PASSWORD_RULE = (
    f"{MIN_RECOVERY_KEY_CHARS} to {MAX_RECOVERY_KEY_CHARS} characters, not a common or easily"
    " guessed password: four or more random words work well."
)


@pages.get("/account/password")
def own_password_form() -> str:
    require("own-password.change")
    return render_template("own_password.html", error=None, password_rule=PASSWORD_RULE)


@pages.post("/account/password")
def change_own_password() -> BaseResponse | tuple[str, int]:
    principal = require("own-password.change")
    try:
        current = Secret.from_text(request.form.get("current_password", ""))
        Accounts(gateway(), web_caller()).change_own_password(
            current, new_password(), keep_session=this_session_hash()
        )
    except VaultError as e:
        # Nothing typed comes back: every field is a password.
        return refused("own_password.html", e, password_rule=PASSWORD_RULE)
    return flash(redirect(url_for("pages.overview")), "own-password-changed", principal.name)


def new_password() -> Secret:
    """The new password from a form's two fields; they must match."""
    password = request.form.get("password", "")
    if password != request.form.get("password_again", ""):
        raise InvalidInputError("the two passwords differ; type the same password twice")
    return Secret.from_text(password)


def this_session_hash() -> bytes | None:
    """The hash of the session this request came with (None for a token)."""
    cookie = request.cookies.get(session_cookie())
    return bearer_hash(cookie) if cookie else None


def end_this_session(response: BaseResponse) -> BaseResponse:
    """Drop the browser's session cookie (its session is gone from the vault)."""
    response.delete_cookie(
        session_cookie(), path="/", secure=True, httponly=True, samesite="Strict"
    )
    return response
