"""The entry-links page and the entry page, through Flask's client with hostile input:
only admins make, list and revoke links; a refused change changes nothing; a new
link's secret is in that one answer only; a closed link's page says why."""

from __future__ import annotations

import datetime
import logging
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from agent_keys.errors import InvalidInputError
from tests.web.api_helpers import ORIGIN, new_entry_link, unchanged
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.access.bearer_secrets import bearer_hash
from vault.access.grants import AccessGrants, OpenEntryLink
from vault.context import utc_now
from web.pages.entry_links import _base_of_links

GOOD = {"datasource": "hr-db", "type": "postgresql", "server": "db.example:5432",
        "database": "hr", "tls": "", "ca_pem": "", "expires": "15"}  # fmt: skip
LINK_URL = re.compile(r'value="(https://localhost/entry/([A-Za-z0-9_-]{43}))"')


class FixedClock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime.datetime:
        return self.now


def _open_links(web_vault: WebVault) -> list[OpenEntryLink]:
    with web_vault.gateway() as gateway:
        return AccessGrants(gateway).open_entry_links()


def _create(client: FlaskClient, csrf: str, **changes: str) -> TestResponse:
    form = {**GOOD, "csrf_token": csrf, **changes}
    return client.post("/entry-links", data=form, base_url=BASE_URL, headers=ORIGIN)


def test_an_admin_makes_a_link_shown_once_in_that_answer_only(
    client: FlaskClient, web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    csrf = sign_in(client, "ada")
    page = client.get("/entry-links", base_url=BASE_URL).get_data(as_text=True)
    assert 'href="/entry-links">Entry links</a>' in page and "No open entry links" in page

    made = _create(client, csrf)

    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    html = made.get_data(as_text=True)
    found = LINK_URL.search(html)
    assert found is not None, html
    url, secret = found.groups()
    assert "Set-Cookie" not in made.headers  # no flash: the secret never rides a cookie
    [shown] = _open_links(web_vault)
    assert (shown.link.datasource, shown.link.created_by) == ("hr-db", "user:ada")
    assert shown.link.target.tls == "verify-full"  # the type's default
    assert shown.link.expires_at - datetime.timedelta(minutes=15) <= utc_now()
    listed = client.get("/entry-links", base_url=BASE_URL).get_data(as_text=True)
    assert shown.link.id in listed and "db.example:5432" in listed
    assert secret not in listed and bearer_hash(secret).hex() not in listed
    with web_vault.gateway() as gateway:
        assert AccessGrants(gateway).entry_link(secret).id == shown.link.id
        created = [e for e in gateway.store.audit_events() if e.action == "entry-link.created"]
        assert [(e.actor, e.channel) for e in created] == [("user:ada", "web")]
    assert client.get(url.removeprefix(BASE_URL), base_url=BASE_URL).status_code == 200
    # Nowhere else: not in any log line, not in the database file.
    assert "/entry/<secret>" in caplog.text  # the request log saw the link used: its route
    assert secret not in caplog.text
    stored = b"".join(path.read_bytes() for path in web_vault.data_dir.glob("vault.db*"))
    assert secret.encode() not in stored


@pytest.mark.parametrize("name", ["cleo", "otto"])
def test_only_admins_see_or_use_the_page(
    client: FlaskClient, web_vault: WebVault, name: str
) -> None:
    new_entry_link(web_vault, "sales")
    [shown] = _open_links(web_vault)
    csrf = sign_in(client, name)
    overview = client.get("/", base_url=BASE_URL).get_data(as_text=True)
    assert "Entry links" not in overview
    with unchanged(web_vault):
        assert client.get("/entry-links", base_url=BASE_URL).status_code == 403
        assert _create(client, csrf).status_code == 403
        revoke = f"/entry-links/{shown.link.id}/revoke"
        assert client.get(revoke, base_url=BASE_URL).status_code == 403
        posted = client.post(revoke, data={"csrf_token": csrf}, base_url=BASE_URL, headers=ORIGIN)
        assert posted.status_code == 403


def test_an_anonymous_caller_makes_and_revokes_nothing(
    client: FlaskClient, web_vault: WebVault
) -> None:
    new_entry_link(web_vault, "sales")
    [shown] = _open_links(web_vault)
    with unchanged(web_vault):
        assert _create(client, "").headers["Location"] == "/signin"
        revoke = f"/entry-links/{shown.link.id}/revoke"
        assert client.post(revoke, base_url=BASE_URL, headers=ORIGIN).status_code == 302


def test_a_change_without_csrf_or_from_elsewhere_is_refused(
    client: FlaskClient, web_vault: WebVault
) -> None:
    new_entry_link(web_vault, "sales")
    [shown] = _open_links(web_vault)
    csrf = sign_in(client, "ada")
    revoke = f"/entry-links/{shown.link.id}/revoke"
    with unchanged(web_vault):
        assert _create(client, "").status_code == 403
        assert _create(client, "x" * 43).status_code == 403
        elsewhere = client.post(
            "/entry-links", data={**GOOD, "csrf_token": csrf}, base_url=BASE_URL,
            headers={"Origin": "https://evil.example"},
        )  # fmt: skip
        assert elsewhere.status_code == 403
        assert client.post(revoke, base_url=BASE_URL, headers=ORIGIN).status_code == 403
        no_origin = client.post(revoke, data={"csrf_token": csrf}, base_url=BASE_URL)
        assert no_origin.status_code == 403


@pytest.mark.parametrize(
    "changes",
    [
        {"expires": "0"},
        {"expires": "61"},
        {"expires": "15m"},
        {"expires": "-1"},
        {"expires": "1e3"},
        {"expires": "\u0663"},
        {"expires": ""},
        {"expires": "9" * 5000},
        {"datasource": "../etc"},
        {"datasource": ""},
        {"datasource": "x" * 129},
        {"type": "oracle"},
        {"type": ""},
        {"server": ""},
        {"server": "db/../x:99999"},
        {"server": "a" * 3000},
        {"database": "x\x00y"},
        {"database": "d" * 300},
        {"tls": "maybe"},
        {"type": "sqlite", "server": "/tmp/x.db", "tls": "verify-full"},
        {"ca_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
        {"ca_pem": "not a certificate"},
    ],
    ids=repr,
)
def test_bad_input_is_one_clear_error_and_changes_nothing(
    client: FlaskClient, web_vault: WebVault, changes: dict[str, str]
) -> None:
    csrf = sign_in(client, "ada")
    with unchanged(web_vault):
        refused = _create(client, csrf, **changes)
    assert refused.status_code == 400, refused.get_data(as_text=True)
    html = refused.get_data(as_text=True)
    assert 'class="error" role="alert"' in html and "Traceback" not in html
    assert LINK_URL.search(html) is None
    if changes.get("server", "").startswith("db/"):  # what was typed is kept
        assert 'value="db/../x:99999"' in html


def test_an_oversized_body_is_refused(client: FlaskClient, web_vault: WebVault) -> None:
    csrf = sign_in(client, "ada")
    with unchanged(web_vault):
        assert _create(client, csrf, ca_pem="A" * 70_000).status_code == 413


@pytest.mark.parametrize("host", ["gw_1.example", "localhost:0", "[::]:8443", "0.0.0.0"])  # noqa: S104
def test_a_host_that_cannot_go_in_a_link_is_refused(app: Flask, host: str) -> None:
    # The admin's own Host header names the link's address: one that cannot be
    # an https origin people reach is refused before any link is made.
    with (
        app.test_request_context("/entry-links", base_url=f"https://{host}"),
        pytest.raises(InvalidInputError, match="--url-base"),
    ):
        _base_of_links()
    with app.test_request_context("/entry-links", base_url="https://gw.example:8443"):
        assert _base_of_links() == "https://gw.example:8443"


def test_revoking_asks_first_names_the_data_source_and_flashes(
    client: FlaskClient, web_vault: WebVault
) -> None:
    secret = new_entry_link(web_vault, "sales")
    [shown] = _open_links(web_vault)
    csrf = sign_in(client, "ada")
    revoke = f"/entry-links/{shown.link.id}/revoke"
    asked = client.get(revoke, base_url=BASE_URL).get_data(as_text=True)
    assert "Revoke the entry link for sales" in asked and f'action="{revoke}"' in asked

    done = client.post(revoke, data={"csrf_token": csrf}, base_url=BASE_URL, headers=ORIGIN)

    assert done.status_code == 302 and done.headers["Location"] == "/entry-links"
    page = client.get("/entry-links", base_url=BASE_URL).get_data(as_text=True)
    assert "Revoked the entry link for sales." in page and "No open entry links" in page
    closed = client.get(f"/entry/{secret}", base_url=BASE_URL)
    assert closed.status_code == 410
    assert "This entry link was revoked" in closed.get_data(as_text=True)
    with unchanged(web_vault):
        again = client.post(revoke, data={"csrf_token": csrf}, base_url=BASE_URL, headers=ORIGIN)
        assert again.status_code == 404
        assert client.get(revoke, base_url=BASE_URL).status_code == 404
        odd = client.get("/entry-links/%2E%2E/revoke", base_url=BASE_URL)
        assert odd.status_code in {400, 404} and "Traceback" not in odd.get_data(as_text=True)
        assert client.get("/entry-links/not-an-id/revoke", base_url=BASE_URL).status_code == 400


def test_the_entry_page_says_who_asked_for_what_until_when_and_once(
    client: FlaskClient, web_vault: WebVault
) -> None:
    secret = new_entry_link(web_vault, "sales")
    [shown] = _open_links(web_vault)
    html = client.get(f"/entry/{secret}", base_url=BASE_URL).get_data(as_text=True)
    assert "<strong>ada</strong> asked you to enter the password" in html
    assert "<strong>sales</strong>: postgresql at" in html
    assert f'<time datetime="{shown.link.expires_at.isoformat()}">' in html
    assert "This link works once" in html and 'id="entry-finished"' in html


def test_a_closed_link_says_why(client: FlaskClient, web_vault: WebVault) -> None:
    clock = FixedClock()
    expired = new_entry_link(web_vault, "sales", clock=clock)
    clock.now -= datetime.timedelta(hours=1)
    long_gone = new_entry_link(web_vault, "hr", clock=clock)
    used = new_entry_link(web_vault, "crm")
    with web_vault.gateway() as gateway:
        grants = AccessGrants(gateway)
        link = grants.entry_link(used)
        with gateway.store.write():
            grants.consume_entry_link(link)
    assert client.get(f"/entry/{expired}", base_url=BASE_URL).status_code == 200
    answers = {
        secret: client.get(f"/entry/{secret}", base_url=BASE_URL)
        for secret in (long_gone, used, "A" * 43)
    }
    assert answers[long_gone].status_code == 410
    assert "This entry link has expired" in answers[long_gone].get_data(as_text=True)
    assert answers[used].status_code == 410
    assert "This entry link has been used" in answers[used].get_data(as_text=True)
    assert "The credential for <strong>crm</strong>" in answers[used].get_data(as_text=True)
    assert answers["A" * 43].status_code == 404
    assert "not recognised" in answers["A" * 43].get_data(as_text=True)
    for response in answers.values():
        assert "Traceback" not in response.get_data(as_text=True)
