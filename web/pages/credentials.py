"""The credential list, the credential form and deleting a credential."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from agent_keys.errors import AccessDeniedError
from vault.access.policy import Action, Principal, authorize
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
from web.api import credential_page_query, page_urls
from web.flash import flash
from web.pages.blueprint import pages
from web.pages.feedback import confirm
from web.pages.life import life_form_values


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
    if not (may_write or may_test):
        return render_template("credential_view.html", name=name, record=record)
    return credential_form(name=name, record=record, may_write=may_write, may_test=may_test)


def _allowed(principal: Principal, action: Action, name: str, owner: str | None) -> bool:
    try:
        authorize(principal, action, datasource=name, owner=owner)
    except AccessDeniedError:
        return False
    return True


@pages.get("/credentials/<name>/delete")
def confirm_delete_credential(name: str) -> str:
    require("credential.write")  # first: an anonymous caller learns nothing about names
    record = CredentialService(gateway()).get(name)
    require("credential.write", datasource=name, owner=record.owner)
    return confirm(
        title=f"Delete {name}",
        question=f"Delete the credential {name}?",
        consequence="Its data key is destroyed: the secret cannot be read again by anyone,"
        " and programs that use this data source stop working.",
        action_url=url_for("pages.delete_credential", name=name),
        button=f"Delete {name}",
        cancel_url=url_for("pages.edit_credential", name=name),
    )


@pages.post("/credentials/<name>/delete")
def delete_credential(name: str) -> BaseResponse:
    require("credential.write")
    record = CredentialService(gateway()).get(name)
    require("credential.write", datasource=name, owner=record.owner)
    CredentialService(gateway(), web_caller()).delete(name)
    return flash(redirect(url_for("pages.credentials")), "credential-deleted", name)


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
