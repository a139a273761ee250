"""The credential list, the credential form, and a credential's life on the page:
disable, enable, delete (softly), the deleted ones with restore and purge."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from agent_keys.errors import AccessDeniedError
from vault.access.policy import Action, Principal, authorize, may
from vault.connectors.dispatch import MAX_DATABASE_CHARS, MAX_SERVER_CHARS
from vault.credential_pages import credential_page
from vault.credentials import CredentialService
from vault.format.ca_certificates import MAX_CA_PEM_CHARS
from vault.format.data_source import (
    AUTH_TYPES,
    DATA_SOURCE_TYPES,
    MAX_SECRET_BYTES,
    MAX_USERNAME_CHARS,
    TLS_MODES,
)
from vault.names import DATASOURCE_NAME_MAX, DATASOURCE_NAME_PATTERN, check_datasource_name
from web.access import gateway, require, web_caller
from web.api import credential_page_query, credential_rows, managing, page_urls
from web.flash import flash
from web.pages.blueprint import pages
from web.pages.feedback import confirm
from web.pages.life import life_form_values


@pages.get("/credentials")
def credentials() -> str:
    """One page of credentials by name (``?deleted=true``: of the deleted ones, with
    Restore and, for admins, Purge), with links to the pages beside it."""
    principal = require("credentials.read")
    query = credential_page_query(request.args)
    page = credential_page(gateway(), query)
    rows = [
        {**row, "may_manage": _allowed(principal, "credential.manage", record.name, record.owner)}
        for row, record in zip(credential_rows(page, principal), page.records, strict=True)
    ]
    links = page_urls("pages.credentials", page, query)
    return render_template(
        "credentials.html",
        rows=rows,
        links=links,
        paged=bool(links),
        deleted=query.deleted,
        may_purge=may(principal, "credential.purge"),
    )


@pages.get("/credentials/new")
def new_credential() -> str:
    require("credential.write")
    return credential_form(name=None, record=None)


@pages.get("/credentials/<name>")
def edit_credential(name: str) -> str:
    """The form for a credential the caller may change; its details, read-only, otherwise.

    The page offers only what the policy allows this caller on this credential
    (a creator changes and tests only its own; an auditor changes none); the
    API decides again on every request, so this only spares a person a 403.
    """
    principal = require("credentials.read")
    stored = CredentialService(gateway()).get(name)
    # The CA is public, and the form must show it: a save that sent the form's
    # empty CA field would change the target (T-CN-1).
    record = {**stored.metadata(), "ca_pem": stored.binding.ca_pem}
    may_write = _allowed(principal, "credential.write", name, stored.owner)
    may_test = _allowed(principal, "credential.test", name, stored.owner)
    may_manage = _allowed(principal, "credential.manage", name, stored.owner)
    if stored.state == "deleted" or not (may_write or may_test):
        # A deleted credential is neither changed nor tested: its facts, and Restore.
        return render_template(
            "credential_view.html", name=name, record=record, may_manage=may_manage
        )
    return credential_form(
        name=name, record=record, may_write=may_write, may_test=may_test, may_manage=may_manage
    )


def _allowed(principal: Principal, action: Action, name: str, owner: str | None) -> bool:
    try:
        authorize(principal, action, datasource=name, owner=owner)
    except AccessDeniedError:
        return False
    return True


@pages.get("/credentials/<name>/delete")
def confirm_delete_credential(name: str) -> str:
    service = managing(name)
    service.get(name)  # a name that is not stored: 404, not a question about it
    return confirm(
        title=f"Delete {name}",
        question=f"Delete the credential {name}?",
        consequence=f"Programs that use this data source stop working: it opens for nobody."
        f" It is kept for {service.retention_days()} days, in which it can be restored from"
        " Deleted credentials; then it is purged for good.",
        action_url=url_for("pages.delete_credential", name=name),
        button=f"Delete {name}",
        cancel_url=url_for("pages.edit_credential", name=name),
    )


@pages.post("/credentials/<name>/delete")
def delete_credential(name: str) -> BaseResponse:
    managing(name).delete(name)
    return flash(redirect(url_for("pages.credentials")), "credential-deleted", name)


@pages.post("/credentials/<name>/restore")
def restore_credential(name: str) -> BaseResponse:
    managing(name).restore(name)
    return flash(redirect(url_for("pages.credentials")), "credential-restored", name)


@pages.post("/credentials/<name>/disable")
def disable_credential(name: str) -> BaseResponse:
    managing(name).disable(name)
    return flash(redirect(url_for("pages.edit_credential", name=name)), "credential-disabled", name)


@pages.post("/credentials/<name>/enable")
def enable_credential(name: str) -> BaseResponse:
    managing(name).enable(name)
    return flash(redirect(url_for("pages.edit_credential", name=name)), "credential-enabled", name)


@pages.get("/credentials/<name>/purge")
def confirm_purge_credential(name: str) -> str:
    require("credential.purge")
    CredentialService(gateway()).get(name)  # a name that is not stored: 404 before asking
    return confirm(
        title=f"Purge {name}",
        question=f"Purge the credential {name}?",
        consequence="Its data key is destroyed: the secret is gone for good, and no restore"
        " brings it back.",
        action_url=url_for("pages.purge_credential", name=name),
        button=f"Purge {name}",
        cancel_url=url_for("pages.credentials", deleted="true"),
    )


@pages.post("/credentials/<name>/purge")
def purge_credential(name: str) -> BaseResponse:
    require("credential.purge")
    CredentialService(gateway(), web_caller()).purge(name)
    to = redirect(url_for("pages.credentials", deleted="true"))
    return flash(to, "credential-purged", name)


def credential_form(
    name: str | None,
    record: dict[str, object] | None,
    entry_secret: str | None = None,
    *,
    fixed_target: bool = False,
    may_write: bool = True,
    may_test: bool = True,
    **context: object,
) -> str:
    """The credential form: new (``record`` None), a stored one, or an entry link's.

    ``may_write``/``may_test`` say which buttons the caller gets (an admin or
    owner both; the policy has no test-only role today, but the page follows it).
    """
    if name is not None:
        check_datasource_name(name)
    return render_template(
        "credential_form.html",
        name=name,
        record=record,
        types=DATA_SOURCE_TYPES,
        auths=AUTH_TYPES,
        tls_modes=TLS_MODES,
        limits=FORM_LIMITS,
        entry_secret=entry_secret,
        fixed_target=fixed_target,
        may_write=may_write,
        may_test=may_test,
        life=life_form_values(record),
        **context,
    )


# The server's own limits, stated in the page and set as the fields' HTML
# limits, so the browser refuses what the gateway would refuse.
FORM_LIMITS: dict[str, object] = {
    "name_pattern": DATASOURCE_NAME_PATTERN,
    "name_chars": DATASOURCE_NAME_MAX,
    "server_chars": MAX_SERVER_CHARS,
    "database_chars": MAX_DATABASE_CHARS,
    "username_chars": MAX_USERNAME_CHARS,
    "ca_chars": MAX_CA_PEM_CHARS,
    "secret_bytes": MAX_SECRET_BYTES,
}
