"""A credential's life on the page (Flask client): the state in the list, Disable
and Enable, Delete asking with the retention window, the Deleted view with
Restore and (admins) Purge, a message after each; and who is offered what.

The browser flow (delete, find it under Deleted, restore) is in
``test_browser_credential_form``."""

from __future__ import annotations

import html

from flask import Flask
from flask.testing import FlaskClient

from tests.web.api_helpers import store_as_ada
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.credentials import CredentialService

SOURCE = "ada-pg"


def text(client: FlaskClient, path: str) -> str:
    response = client.get(path, base_url=BASE_URL)
    assert response.status_code == 200, (path, response.status_code)
    return html.unescape(response.get_data(as_text=True))


def post(client: FlaskClient, path: str, csrf: str) -> str:
    """Post a page's form; returns the page it leads to, with its message."""
    response = client.post(path, data={"csrf_token": csrf}, base_url=BASE_URL,
                           headers={"Origin": BASE_URL})  # fmt: skip
    assert response.status_code == 302, (path, response.get_data(as_text=True)[:300])
    return text(client, response.headers["Location"])


def state_of(web_vault: WebVault, name: str) -> str:
    with web_vault.gateway() as gateway:
        return CredentialService(gateway).get(name).state


def test_disable_enable_delete_restore_and_purge_on_the_page(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, SOURCE)
    csrf = sign_in(client, "ada")
    shown = post(client, f"/credentials/{SOURCE}/disable", csrf)
    assert "Disabled credential ada-pg; it is neither used nor tested." in shown
    assert 'id="enable"' in shown and "neither used nor tested until it is enabled" in shown
    assert '<span class="badge badge-disabled">Disabled</span>' in text(client, "/credentials")
    shown = post(client, f"/credentials/{SOURCE}/enable", csrf)
    assert "Enabled credential ada-pg." in shown and 'id="disable"' in shown

    asked = text(client, f"/credentials/{SOURCE}/delete")
    assert "Delete the credential ada-pg?" in asked and "kept for 30 days" in asked
    assert "restored" in asked
    listed = post(client, f"/credentials/{SOURCE}/delete", csrf)
    assert "Deleted credential ada-pg; it can be restored from Deleted credentials" in listed
    assert ">ada-pg</a>" not in listed
    deleted = text(client, "/credentials?deleted=true")
    assert ">ada-pg</a>" in deleted and 'aria-label="Restore ada-pg"' in deleted
    assert 'aria-label="Purge ada-pg…"' in deleted
    view = text(client, f"/credentials/{SOURCE}")  # its facts and Restore, no form
    assert 'id="restore"' in view and 'id="credential-form"' not in view

    asked = text(client, f"/credentials/{SOURCE}/purge")
    assert "Purge the credential ada-pg?" in asked and "gone for good" in asked
    shown = post(client, f"/credentials/{SOURCE}/purge", csrf)
    assert "Purged credential ada-pg; its data key was destroyed." in shown
    assert "No deleted credentials." in shown


def test_restore_from_the_deleted_view(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, SOURCE)
    csrf = sign_in(client, "ada")
    post(client, f"/credentials/{SOURCE}/delete", csrf)
    shown = post(client, f"/credentials/{SOURCE}/restore", csrf)
    assert "Restored credential ada-pg." in shown and ">ada-pg</a>" in shown
    assert state_of(web_vault, SOURCE) == "active"


def test_only_an_owner_or_admin_manages_and_only_an_admin_purges(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, SOURCE)
    csrf = sign_in(client, "cleo")  # a creator, not the owner
    assert 'id="disable"' not in text(client, f"/credentials/{SOURCE}")
    for action in ("disable", "delete", "restore", "purge"):
        response = client.post(f"/credentials/{SOURCE}/{action}", data={"csrf_token": csrf},
                               base_url=BASE_URL, headers={"Origin": BASE_URL})  # fmt: skip
        assert response.status_code == 403, action
    assert client.get(f"/credentials/{SOURCE}/purge", base_url=BASE_URL).status_code == 403
    assert state_of(web_vault, SOURCE) == "active"

    ada = app.test_client()
    post(ada, f"/credentials/{SOURCE}/delete", sign_in(ada, "ada"))
    deleted = text(client, "/credentials?deleted=true")  # cleo sees it, may not act on it
    assert ">ada-pg</a>" in deleted and "Restore ada-pg" not in deleted
    assert "Purge ada-pg" not in deleted


def test_a_form_post_without_its_csrf_token_changes_nothing(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    store_as_ada(app, web_vault, SOURCE)
    sign_in(client, "ada")
    for action in ("disable", "delete"):
        response = client.post(f"/credentials/{SOURCE}/{action}", data={"csrf_token": "stale"},
                               base_url=BASE_URL, headers={"Origin": BASE_URL})  # fmt: skip
        assert response.status_code == 403
    assert state_of(web_vault, SOURCE) == "active"
