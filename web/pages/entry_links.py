"""Entry links: the admins' page that makes, lists and revokes them, and the
entry page a link opens for the person it was sent to.

A new link's secret is shown once, in the answer to the POST that made it:
never in a redirect, a flash cookie or a URL of ours other than the link
itself (T-EL-1).  The link's address is the one the admin reached this page
at (the request's Host): the person it is sent to reaches the same gateway
there.  The served or configured address would often be wrong here: loopback
behind a reverse proxy, 0.0.0.0, or one cluster member behind the load
balancer the admin came through.  A Host header only the admin's own client could have forged (the
origin check refuses another site's form, and the session cookie is bound to
this origin) misleads only that admin; ``gwvault entry-link create
--url-base`` names any other address.
"""

from __future__ import annotations

import datetime

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from agent_keys.errors import InvalidInputError, NotFoundError, VaultError
from vault.access.grants import (
    ENTRY_LINK_TESTS,
    LONGEST_ENTRY_LINK,
    AccessGrants,
    EntryLinkClosedError,
    OpenEntryLink,
    check_entry_link_id,
)
from vault.connectors.dispatch import validate_target
from vault.format.data_source import DATA_SOURCE_TYPES, TLS_MODES, DataSource
from vault.served_address import parse_url_base
from web.access import entry_caller, gateway, require, web_caller
from web.api import target_json
from web.flash import flash
from web.json_body import target_of
from web.pages.blueprint import pages
from web.pages.credentials import credential_form
from web.pages.feedback import confirm, refused

DEFAULT_MINUTES = "15"  # as `gwvault entry-link create --expires`
_LONGEST_MINUTES = int(LONGEST_ENTRY_LINK.total_seconds() // 60)
_FORM_FIELDS = ("datasource", "type", "server", "database", "tls", "ca_pem", "expires")


@pages.get("/entry-links")
def entry_links() -> str:
    require("entry_links.manage")
    return _page(form={"expires": DEFAULT_MINUTES})


@pages.post("/entry-links")
def create_entry_link() -> str | tuple[str, int]:
    require("entry_links.manage")
    form = {field: request.form.get(field, "") for field in _FORM_FIELDS}
    try:
        target, lifetime = _target_of(form), _lifetime_of(form["expires"])
        base = _base_of_links()  # before the link is made: a refusal leaves none
        secret, link = AccessGrants(gateway()).create_entry_link(
            form["datasource"], target, lifetime, web_caller()
        )
    except VaultError as e:
        return refused("entry_links.html", e, **_listing(), form=form, **_choices())
    # Shown in this answer only (no-store, like every page): never redirected to.
    url = base + url_for("pages.entry", secret=secret)
    return _page(form={"expires": DEFAULT_MINUTES}, created=link, created_url=url)


@pages.get("/entry-links/<link_id>/revoke")
def confirm_revoke_entry_link(link_id: str) -> str:
    require("entry_links.manage")
    shown = _open_link(link_id)
    target = shown.link.target
    return confirm(
        title=f"Revoke the entry link for {shown.link.datasource}",
        question=f"Revoke the entry link for {shown.link.datasource}"
        f" ({target.type} at {target.server})?",
        consequence="Whoever holds it can no longer open the entry page or save the credential"
        " with it. This cannot be undone; a new link can be made.",
        action_url=url_for("pages.revoke_entry_link", link_id=shown.link.id),
        button="Revoke link",
        cancel_url=url_for("pages.entry_links"),
    )


@pages.post("/entry-links/<link_id>/revoke")
def revoke_entry_link(link_id: str) -> BaseResponse:
    require("entry_links.manage")
    link = AccessGrants(gateway()).revoke_entry_link(link_id, web_caller())
    return flash(redirect(url_for("pages.entry_links")), "entry-link-revoked", link.datasource)


@pages.get("/entry/<secret>")
def entry(secret: str) -> str | tuple[str, int]:
    try:
        link = entry_caller(secret)
    except EntryLinkClosedError as closed:
        # The entry page's own answer for a link that opens nothing: a page
        # that says what happened (410 Gone once it was used, revoked or
        # expired) rather than the error page's bare refusal.
        status = 404 if closed.state == "unknown" else 410
        page = render_template(
            "entry_closed.html", state=closed.state, link=closed.link, closed_at=closed.closed_at
        )
        return page, status
    return credential_form(
        name=link.datasource,
        record=target_json(link.target),
        entry_secret=secret,
        fixed_target=True,
        entry_link=link,
        entry_tests=ENTRY_LINK_TESTS,
    )


def _page(**context: object) -> str:
    return render_template("entry_links.html", error=None, **_listing(), **_choices(), **context)


def _listing() -> dict[str, object]:
    return {"links": AccessGrants(gateway()).open_entry_links(web_caller())}


def _choices() -> dict[str, object]:
    return {
        "types": DATA_SOURCE_TYPES,
        "tls_modes": TLS_MODES,
        "longest": _LONGEST_MINUTES,
        "entry_tests": ENTRY_LINK_TESTS,
    }


def _open_link(link_id: str) -> OpenEntryLink:
    checked = check_entry_link_id(link_id)
    for shown in AccessGrants(gateway()).open_entry_links(web_caller()):
        if shown.link.id == checked:
            return shown
    raise NotFoundError("no open entry link has that id; it may have been used or revoked")


def _target_of(form: dict[str, str]) -> DataSource:
    target = target_of({key: form[key] for key in ("type", "server", "database", "tls", "ca_pem")})
    validate_target(target)
    return target


def _lifetime_of(text: str) -> datetime.timedelta:
    if not (text.isascii() and text.isdigit() and len(text) <= 2):
        raise InvalidInputError(f"an entry link expires in 1 to {_LONGEST_MINUTES} minutes")
    return datetime.timedelta(minutes=int(text))


def _base_of_links() -> str:
    try:
        return parse_url_base(f"https://{request.host}")
    except InvalidInputError:
        raise InvalidInputError(
            "this page was reached at an address that cannot go in a link; make the link with"
            " gwvault entry-link create --url-base https://HOST[:PORT]"
        ) from None
