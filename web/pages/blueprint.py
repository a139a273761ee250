"""The pages' blueprint and what every page needs: who may see which link, and
the way back to sign-in when no session came with the request."""

from __future__ import annotations

from flask import Blueprint, g, redirect, url_for
from werkzeug.wrappers import Response as BaseResponse

from vault.access.policy import Action, Principal, may
from web.errors import Unauthenticated

pages = Blueprint("pages", __name__)

# A navigation link shows when the policy allows its action: asked of
# vault.access.policy, not of role names, so links follow the policy.
NAVIGATION: dict[str, Action] = {
    "may_write_credentials": "credential.write",
    "may_manage_users": "users.manage",
    "may_manage_entry_links": "entry_links.manage",
    "may_read_audit": "audit.read",
}


@pages.app_context_processor
def navigation() -> dict[str, bool]:
    principal: Principal | None = g.get("principal")
    return {
        flag: principal is not None and may(principal, action)
        for flag, action in NAVIGATION.items()
    }


@pages.errorhandler(Unauthenticated)
def to_sign_in(_error: Unauthenticated) -> BaseResponse:
    return redirect(url_for("pages.sign_in_form"))


@pages.get("/favicon.ico")
def favicon() -> BaseResponse:
    # Browsers ask for /favicon.ico before reading the page's <link rel=icon>.
    return redirect(url_for("static", filename="favicon.svg"), code=301)
