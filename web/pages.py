"""Server-rendered pages: sign-in, overview, credentials, the credential form, users,
entry links, and the audit trail.

No page shows a secret: the credential form's secret field is read by the
page's script, sealed in the browser and sent as an EncryptedCredential.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from agent_keys.errors import AccessDeniedError, InvalidInputError
from agent_keys.secret import Secret
from vault.access.accounts import Accounts
from vault.access.policy import Principal, authorize
from vault.audit.incremental import verify_since_mark
from vault.audit.log import DEFAULT_LIMIT, AuditLog, AuditQuery, entry_view
from vault.credential_pages import credential_page
from vault.credentials import CredentialService
from vault.format.data_source import AUTH_TYPES, DATA_SOURCE_TYPES, TLS_MODES
from vault.keys.certificates import CertificateService
from vault.keys.tls import TlsService
from vault.names import check_datasource_name
from web.access import entry_caller, gateway, require, session_cookie, web_caller
from web.api import (
    audit_query,
    credential_page_query,
    newer_after,
    next_before,
    page_urls,
    target_json,
)
from web.errors import Unauthenticated

pages = Blueprint("pages", __name__)


@pages.app_context_processor
def navigation() -> dict[str, bool]:
    # Asked of the policy, not of role names, so the link follows vault.access.policy.
    principal: Principal | None = g.get("principal")
    return {"may_read_audit": principal is not None and _may(principal)}


def _may(principal: Principal) -> bool:
    try:
        authorize(principal, "audit.read")
    except AccessDeniedError:
        return False
    return True


@pages.errorhandler(Unauthenticated)
def to_sign_in(_error: Unauthenticated) -> BaseResponse:
    return redirect(url_for("pages.sign_in_form"))


@pages.get("/signin")
def sign_in_form() -> str:
    return render_template("signin.html", error=None)


@pages.post("/signin")
def sign_in() -> BaseResponse | tuple[str, int]:
    name = request.form.get("name", "")
    password = request.form.get("password", "")
    accounts = Accounts(gateway())
    try:
        principal = accounts.sign_in(name, Secret.from_text(password))
    except AccessDeniedError as e:
        return render_template("signin.html", error=str(e)), 403
    session_id, session = accounts.open_session(principal)
    response = redirect(url_for("pages.overview"))
    max_age = int((session.expires_at - gateway().context.clock()).total_seconds())
    response.set_cookie(
        session_cookie(),
        session_id,
        max_age=max_age,
        secure=True,
        httponly=True,
        samesite="Strict",
        path="/",
    )
    return response


@pages.post("/signout")
def sign_out() -> BaseResponse:
    require("status.read")
    cookie = request.cookies.get(session_cookie(), "")
    Accounts(gateway()).close_session(cookie)
    response = redirect(url_for("pages.sign_in_form"))
    response.delete_cookie(
        session_cookie(), path="/", secure=True, httponly=True, samesite="Strict"
    )
    return response


@pages.get("/")
def overview() -> str:
    require("status.read")
    facts = gateway().status()
    tls = TlsService(gateway()).show()
    warning = CertificateService(gateway()).expiry_warning()
    return render_template("overview.html", facts=facts, tls=tls, cert_warning=warning)


@pages.get("/credentials")
def credentials() -> str:
    """One page of credentials by name, with links to the pages beside it."""
    require("credentials.read")
    query = credential_page_query(request.args)
    page = credential_page(gateway(), query)
    rows = [record.metadata() for record in page.records]
    links = page_urls("pages.credentials", page, query)
    return render_template("credentials.html", rows=rows, links=links, paged=bool(links))


@pages.get("/credentials/new")
def new_credential() -> str:
    require("credential.write")
    return _form(name=None, record=None)


@pages.get("/credentials/<name>")
def edit_credential(name: str) -> str:
    require("credentials.read")
    return _form(name=name, record=CredentialService(gateway()).get(name).metadata())


@pages.post("/credentials/<name>/delete")
def delete_credential(name: str) -> BaseResponse:
    require("credential.write")  # first: an anonymous caller learns nothing about names
    record = CredentialService(gateway()).get(name)
    require("credential.write", datasource=name, owner=record.owner)
    CredentialService(gateway(), web_caller()).delete(name)
    return redirect(url_for("pages.credentials"))


@pages.get("/entry/<secret>")
def entry(secret: str) -> str:
    link = entry_caller(secret)
    target = target_json(link.target)
    return _form(name=link.datasource, record=target, entry_secret=secret, fixed_target=True)


@pages.route("/users", methods=["GET", "POST"])
def users() -> str | BaseResponse:
    require("users.manage")
    accounts = Accounts(gateway())
    if request.method == "POST":
        if request.form.get("action") == "remove":
            accounts.remove_user(request.form.get("name", ""))
        else:
            accounts.add_user(
                request.form.get("name", ""),
                request.form.get("role", ""),
                Secret.from_text(request.form.get("password", "")),
            )
        return redirect(url_for("pages.users"))
    return render_template("users.html", users=accounts.users())


@pages.get("/audit")
def audit() -> tuple[str, int]:
    """The trail's verdict, a filter form and one page of events, newest first.

    Bad filter input re-renders the form with the message (400), so the
    auditor can correct it; the verdict still shows.
    """
    principal = require("audit.read")
    log = AuditLog(gateway())
    report = verify_since_mark(gateway(), f"web:{principal.actor}")
    form = {name: request.args.get(name, "") for name in ("credential", "action", "since")}
    try:
        query = audit_query(request.args, blank_is_unset=True)
    except InvalidInputError as e:
        page = render_template("audit.html", report=report, form=form, error=str(e), query=None)
        return page, 400
    found = log.find(query)
    events = [entry_view(entry) for entry in found]
    for event in events:
        event["details"] = json.dumps(event["details"], sort_keys=True, ensure_ascii=False)
    older, newer = next_before(found, query), newer_after(found, query)
    paged = query.before_seq is not None or query.after_seq is not None
    page = render_template(
        "audit.html",
        report=report,
        form=form,
        error=None,
        query=query,
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


def _form(
    name: str | None,
    record: dict[str, object] | None,
    entry_secret: str | None = None,
    *,
    fixed_target: bool = False,
) -> str:
    if name is not None:
        check_datasource_name(name)
    return render_template(
        "credential_form.html",
        name=name,
        record=record,
        types=DATA_SOURCE_TYPES,
        auths=AUTH_TYPES,
        tls_modes=TLS_MODES,
        entry_secret=entry_secret,
        fixed_target=fixed_target,
    )
