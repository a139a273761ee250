"""API tokens for admins: list, create, revoke.

A new token is shown once, on the page that answers the form's POST: never in
a URL, a flash cookie or a redirect, and the page is ``no-store`` like every
answer (``web.security``).  The page's script replaces the history entry with
the list, so a reload shows the list, not the token (without script, a reload
re-posts and the taken name is refused).  The vault keeps only its hash.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from agent_keys.errors import NotFoundError, VaultError
from vault.access.grants import AccessGrants
from vault.access.policy import ROLES
from web.access import gateway, require, web_caller
from web.flash import flash
from web.pages.blueprint import pages
from web.pages.feedback import confirm, refused


@pages.get("/tokens")
def tokens() -> str:
    require("users.manage")
    return render_template("tokens.html", error=None, **_context({}))


@pages.post("/tokens")
def create_token() -> tuple[str, int]:
    require("users.manage")
    name, role = request.form.get("name", ""), request.form.get("role", "")
    try:
        token = AccessGrants(gateway()).create_token(name, role, caller=web_caller())
    except VaultError as e:
        return refused("tokens.html", e, **_context({"name": name, "role": role}))
    page = render_template("token_created.html", name=name, role=role, token=token)
    return page, 201


@pages.get("/tokens/<name>/revoke")
def confirm_revoke_token(name: str) -> str:
    require("users.manage")
    if not any(t["name"] == name and not t["revoked_at"] for t in AccessGrants(gateway()).tokens()):
        raise NotFoundError(f"no live token named {name!r}")
    return confirm(
        title=f"Revoke {name}",
        question=f"Revoke the API token {name}?",
        consequence="Programs that use it are refused from the next request on. A revoked"
        " token cannot be brought back; create a new one instead.",
        action_url=url_for("pages.revoke_token", name=name),
        button=f"Revoke {name}",
        cancel_url=url_for("pages.tokens"),
    )


@pages.post("/tokens/<name>/revoke")
def revoke_token(name: str) -> BaseResponse:
    require("users.manage")
    AccessGrants(gateway()).revoke_token(name, caller=web_caller())
    return flash(redirect(url_for("pages.tokens")), "token-revoked", name)


def _context(form: dict[str, str]) -> dict[str, object]:
    return {"tokens": AccessGrants(gateway()).tokens(), "form": form, "roles": ROLES}
