"""Web users: list, add, remove."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from agent_keys.errors import VaultError
from agent_keys.secret import Secret
from vault.access.accounts import Accounts
from web.access import gateway, require
from web.pages.blueprint import pages
from web.pages.feedback import confirm, flash, refused


@pages.get("/users")
def users() -> str:
    require("users.manage")
    return render_template("users.html", users=Accounts(gateway()).users(), form={}, error=None)


@pages.post("/users")
def add_user() -> BaseResponse | tuple[str, int]:
    require("users.manage")
    accounts = Accounts(gateway())
    name, role = request.form.get("name", ""), request.form.get("role", "")
    try:
        accounts.add_user(name, role, Secret.from_text(request.form.get("password", "")))
    except VaultError as e:
        return refused("users.html", e, users=accounts.users(), form={"name": name, "role": role})
    return flash(redirect(url_for("pages.users")), "user-added", name)


@pages.get("/users/<name>/remove")
def confirm_remove_user(name: str) -> str:
    require("users.manage")
    return confirm(
        title=f"Remove {name}",
        question=f"Remove the user {name}?",
        consequence="They can no longer sign in, and their open sessions end now.",
        action_url=url_for("pages.remove_user", name=name),
        button=f"Remove {name}",
        cancel_url=url_for("pages.users"),
    )


@pages.post("/users/<name>/remove")
def remove_user(name: str) -> BaseResponse:
    require("users.manage")
    Accounts(gateway()).remove_user(name)
    return flash(redirect(url_for("pages.users")), "user-removed", name)
