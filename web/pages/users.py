"""Web users: list, add, change a role, set a password, remove.

Every change goes through ``Accounts`` with the request's caller, so it is
authorized inside the write that makes it; the vault refuses to lose its last
admin (``LastAdminError``), and the page shows why, with the form as it was.
User names may hold ``/`` (the CLI allows it), so the routes take a path and
end in a fixed word.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from agent_keys.errors import VaultError
from vault.access.accounts import Accounts, LastAdminError
from vault.access.policy import ROLES, Principal, parse_role
from web.access import gateway, require, web_caller
from web.flash import flash
from web.pages.account import PASSWORD_RULE, end_this_session, new_password, this_session_hash
from web.pages.blueprint import pages
from web.pages.feedback import confirm, refused


@pages.get("/users")
def users() -> str:
    principal = require("users.manage")
    return _users_page(principal, form={}, error=None)[0]


@pages.post("/users")
def add_user() -> BaseResponse | tuple[str, int]:
    principal = require("users.manage")
    name, role = request.form.get("name", ""), request.form.get("role", "")
    try:
        password = new_password()
        Accounts(gateway(), web_caller()).add_user(name, role, password)
    except VaultError as e:
        # What was typed comes back, never the password.
        return _users_page(principal, form={"name": name, "role": role}, error=e)
    return flash(redirect(url_for("pages.users")), "user-added", name)


@pages.get("/users/<path:name>/edit")
def edit_user(name: str) -> str:
    principal = require("users.manage")
    return _edit_page(principal, name)[0]


@pages.post("/users/<path:name>/role")
def set_user_role(name: str) -> BaseResponse | tuple[str, int] | str:
    principal = require("users.manage")
    demoting_yourself = _is_you(principal, name) and request.form.get("role") != "admin"
    try:
        role = parse_role(request.form.get("role", ""))
        if demoting_yourself and request.form.get("confirmed") != "yes":
            return _confirm_own_role(name, role)
        Accounts(gateway(), web_caller()).set_role(name, role)
    except VaultError as e:
        return _edit_page(principal, name, role_error=e)
    # Demoted, you may no longer see the users page: the overview says what happened.
    target = "pages.overview" if demoting_yourself else "pages.users"
    return flash(redirect(url_for(target)), "user-role-changed", f"{name} to {role}")


def _confirm_own_role(name: str, role: str) -> str:
    return confirm(
        title=f"Change your own role to {role}",
        question=f"Make yourself ({name}) {role}?",
        consequence="You can no longer manage users or tokens; only another admin can give"
        " the role back.",
        action_url=url_for("pages.set_user_role", name=name),
        button=f"Make me {role}",
        cancel_url=url_for("pages.edit_user", name=name),
        fields={"role": role, "confirmed": "yes"},
    )


@pages.post("/users/<path:name>/password")
def set_user_password(name: str) -> BaseResponse | tuple[str, int]:
    principal = require("users.manage")
    try:
        password = new_password()
        Accounts(gateway(), web_caller()).set_password(
            name, password, keep_session=this_session_hash()
        )
    except VaultError as e:
        return _edit_page(principal, name, password_error=e)
    return flash(redirect(url_for("pages.users")), "password-changed", name)


@pages.get("/users/<path:name>/remove")
def confirm_remove_user(name: str) -> str | tuple[str, int]:
    principal = require("users.manage")
    accounts = Accounts(gateway())
    accounts.user(name)  # a missing user is a 404 here, not a question
    if accounts.is_last_admin(name):
        # Say why now rather than ask a question whose answer is refused.
        return _users_page(principal, form={}, error=LastAdminError(name))
    yourself = _is_you(principal, name)
    return confirm(
        title=f"Remove {name}",
        question=f"Remove your own account ({name})?" if yourself else f"Remove the user {name}?",
        consequence="This signs you out now, and you can no longer sign in."
        if yourself
        else "They can no longer sign in, and their open sessions end now.",
        action_url=url_for("pages.remove_user", name=name),
        button="Remove me and sign out" if yourself else f"Remove {name}",
        cancel_url=url_for("pages.users"),
    )


@pages.post("/users/<path:name>/remove")
def remove_user(name: str) -> BaseResponse | tuple[str, int]:
    principal = require("users.manage")
    try:
        Accounts(gateway(), web_caller()).remove_user(name)
    except VaultError as e:
        return _users_page(principal, form={}, error=e)
    if _is_you(principal, name):
        # The session went with the account: say so on the sign-in page.
        return flash(end_this_session(redirect(url_for("pages.sign_in_form"))), "account-removed")
    return flash(redirect(url_for("pages.users")), "user-removed", name)


def _is_you(principal: Principal, name: str) -> bool:
    # A token may share a user's name; it is not that user.
    return principal.kind == "user" and principal.name == name


def _you(principal: Principal) -> str | None:
    return principal.name if principal.kind == "user" else None


def _users_page(
    principal: Principal, form: dict[str, str], error: VaultError | None
) -> tuple[str, int]:
    context = {"users": Accounts(gateway()).users(), "form": form, "you": _you(principal),
               "roles": ROLES, "password_rule": PASSWORD_RULE}  # fmt: skip
    if error is not None:
        return refused("users.html", error, **context)
    return render_template("users.html", error=None, **context), 200


def _edit_page(
    principal: Principal,
    name: str,
    *,
    role_error: VaultError | None = None,
    password_error: VaultError | None = None,
) -> tuple[str, int]:
    user = Accounts(gateway()).user(name)
    error = role_error or password_error
    context = {"user": user, "you": _you(principal), "roles": ROLES,
               "password_rule": PASSWORD_RULE, "role_error": role_error and str(role_error),
               "password_error": password_error and str(password_error)}  # fmt: skip
    if error is not None:
        return refused("user_edit.html", error, **context)
    return render_template("user_edit.html", error=None, **context), 200
