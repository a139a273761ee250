"""The credential list, the credential form and deleting a credential."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from vault.credential_pages import credential_page
from vault.credentials import CredentialService
from vault.format.data_source import AUTH_TYPES, DATA_SOURCE_TYPES, TLS_MODES
from vault.names import check_datasource_name
from web.access import gateway, require, web_caller
from web.api import credential_page_query, page_urls
from web.pages.blueprint import pages
from web.pages.feedback import confirm, flash


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
    require("credentials.read")
    return credential_form(name=name, record=CredentialService(gateway()).get(name).metadata())


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
    **context: object,
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
        **context,
    )
