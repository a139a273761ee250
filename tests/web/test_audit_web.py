"""The auditor's side of the web: GET /api/v1/audit, /api/v1/audit/verify and the /audit page.

They mirror ``gwvault audit list`` and ``gwvault audit verify``: the same
filters, checked the same way, and the same verdict, which is data (a 200)
whether the trail holds or not.  Tampering is done the way an attacker with
the file would: straight in SQLite, past the append-only triggers.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from agent_keys.secret import Secret
from tests.store_engines import EngineVaults
from tests.web.api_helpers import (
    API,
    assert_api_error,
    bearer,
    new_entry_link,
    new_token,
    put_credential,
    sealed_body,
    unchanged,
)
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.access.accounts import Accounts

AUDIT = f"{API}/audit"
VERIFY = f"{API}/audit/verify"
SOURCE = "sales-db"
Headers = dict[str, str]
# Newest first: what the history fixture does to SOURCE, as its timeline shows it.
SOURCE_TIMELINE = ["entry-link.created", "credential.tested", "credential.updated",
                   "credential.created"]  # fmt: skip


@pytest.fixture
def auditor(web_vault: WebVault) -> Headers:
    return bearer(new_token(web_vault, "auditor"))


@pytest.fixture
def history(client: FlaskClient, web_vault: WebVault) -> None:
    """SOURCE stored, updated, tested and linked; another credential; a user named SOURCE."""
    admin = bearer(new_token(web_vault, "admin"))
    for name in (SOURCE, SOURCE, "hr-db"):
        response = put_credential(client, name, sealed_body(web_vault, name), admin)
        assert response.status_code in (200, 201), response.get_data(as_text=True)
    tested = client.post(f"{API}/credentials/{SOURCE}/test", base_url=BASE_URL, headers=admin)
    assert tested.status_code == 200
    new_entry_link(web_vault, SOURCE)
    with web_vault.gateway() as gateway:
        # Same name, but a user: not part of the credential's timeline.
        Accounts(gateway).add_user(SOURCE, "creator", Secret.from_text("a user, not a source 1"))


def _get(client: FlaskClient, url: str, headers: Headers, **params: str) -> TestResponse:
    query = f"?{urlencode(params)}" if params else ""
    return client.get(f"{url}{query}", base_url=BASE_URL, headers=headers)


def _events(client: FlaskClient, headers: Headers, **params: str) -> list[dict[str, Any]]:
    response = _get(client, AUDIT, headers, **params)
    assert response.status_code == 200, response.get_data(as_text=True)
    events: list[dict[str, Any]] = response.get_json()["events"]
    return events


def _tamper(vaults: EngineVaults, web_vault: WebVault, seq: int) -> None:
    """Edit one entry, as someone holding the database (not the vault's keys) could."""
    with vaults.sql(web_vault.data_dir, attacker=True) as db:
        db.execute("UPDATE audit_events SET actor = 'x' WHERE seq = ?", [seq])


# -- who may read the trail ----------------------------------------------------


def _caller(client: FlaskClient, web_vault: WebVault, who: str) -> Headers:
    kind, role = who.split("-", 1)
    if kind == "token":
        return bearer(new_token(web_vault, role))
    sign_in(client, {"admin": "ada", "creator": "cleo", "auditor": "otto"}[role])
    return {}


READERS = ["token-admin", "token-auditor", "session-admin", "session-auditor"]


@pytest.mark.parametrize("who", READERS)
def test_admins_and_auditors_read_the_trail(
    client: FlaskClient, web_vault: WebVault, who: str
) -> None:
    headers = _caller(client, web_vault, who)
    listed = _get(client, AUDIT, headers)
    verified = _get(client, VERIFY, headers)
    assert (listed.status_code, verified.status_code) == (200, 200)
    assert {"user.added"} <= {event["action"] for event in listed.get_json()["events"]}
    assert verified.get_json()["ok"] is True
    if who.startswith("session"):
        page = client.get("/audit", base_url=BASE_URL)
        assert page.status_code == 200
        assert '<table class="card audit">' in page.get_data(as_text=True)


@pytest.mark.parametrize("who", ["token-creator", "session-creator"])
def test_creators_may_not_read_the_trail(
    client: FlaskClient, web_vault: WebVault, who: str
) -> None:
    headers = _caller(client, web_vault, who)
    for url in (AUDIT, VERIFY):
        assert "a creator may not do that (audit.read)" in assert_api_error(
            _get(client, url, headers), 403, "forbidden"
        )
    if who.startswith("session"):
        page = client.get("/audit", base_url=BASE_URL)
        assert page.status_code == 403
        assert "audit.read" in page.get_data(as_text=True)


def test_an_entry_link_opens_no_audit_route(client: FlaskClient, web_vault: WebVault) -> None:
    # An entry link authenticates only the /entry routes; anywhere else its
    # secret is no token at all (authz would refuse it audit.read in any case).
    secret = new_entry_link(web_vault, SOURCE)
    for url in (AUDIT, VERIFY):
        assert_api_error(_get(client, url, bearer(secret)), 401, "unauthenticated")
    assert _get(client, f"{API}/entry/{secret}", {}).status_code == 200  # the link still works


def test_anonymous_callers_are_sent_to_sign_in(client: FlaskClient) -> None:
    for url in (AUDIT, VERIFY):
        response = _get(client, url, {}, limit="5")
        assert_api_error(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="gwvault"'
    page = client.get("/audit?credential=sales-db", base_url=BASE_URL)
    assert (page.status_code, page.headers["Location"]) == (302, "/signin")


# -- filters and paging ----------------------------------------------------------


@pytest.mark.usefixtures("history")
def test_a_credential_timeline_lists_only_that_credentials_events(
    client: FlaskClient, auditor: Headers
) -> None:
    events = _events(client, auditor, credential=SOURCE)
    assert [event["action"] for event in events] == SOURCE_TIMELINE
    assert {event["target"] for event in events} == {SOURCE}
    assert [event["seq"] for event in events] == sorted((e["seq"] for e in events), reverse=True)
    everything = _events(client, auditor, limit="1000")
    assert ("user.added", SOURCE) in {(e["action"], e["target"]) for e in everything}
    assert _events(client, auditor, credential="no-such-db") == []


@pytest.mark.usefixtures("history")
def test_an_action_filter_is_exact_or_a_prefix(client: FlaskClient, auditor: Headers) -> None:
    added = _events(client, auditor, action="user.added")
    assert sorted(event["target"] for event in added) == ["ada", "cleo", "otto", SOURCE]
    prefixed = _events(client, auditor, action="credential.*", limit="1000")
    assert sorted(e["action"] for e in prefixed) == [
        "credential.created", "credential.created", "credential.tested", "credential.updated",
    ]  # fmt: skip
    both = _events(client, auditor, action="credential.*", credential="hr-db")
    assert [(e["action"], e["target"]) for e in both] == [("credential.created", "hr-db")]
    assert _events(client, auditor, action="credential") == []  # a name, not a prefix


@pytest.mark.usefixtures("history")
def test_since_keeps_events_at_or_after_it(client: FlaskClient, auditor: Headers) -> None:
    everything = _events(client, auditor, limit="1000")
    middle = everything[len(everything) // 2]["at"]
    later = _events(client, auditor, since=middle, limit="1000")
    assert later == [event for event in everything if event["at"] >= middle]
    assert 0 < len(later) < len(everything) or everything[-1]["at"] == middle
    assert _events(client, auditor, since="2000-01-01T00:00:00+01:00", limit="1000") == everything
    assert _events(client, auditor, since="9999-01-01") == []


@pytest.mark.usefixtures("history")
def test_limit_gives_the_newest_and_paging_reaches_every_event_once(
    client: FlaskClient, auditor: Headers
) -> None:
    everything = _events(client, auditor, limit="1000")
    assert len(everything) > 7  # enough for several pages of 3
    first = _get(client, AUDIT, auditor, limit="2").get_json()
    assert first["events"] == everything[:2]
    assert first["next_before"] == everything[1]["seq"]
    seen: list[int] = []
    before: int | None = None
    for _page in range(len(everything)):
        params = {"limit": "3"} | ({"before": str(before)} if before is not None else {})
        page = _get(client, AUDIT, auditor, **params).get_json()
        seen += [event["seq"] for event in page["events"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == [event["seq"] for event in everything]
    assert len(set(seen)) == len(seen)
    last = _get(client, AUDIT, auditor, limit="1000").get_json()
    assert last["next_before"] is None  # not a full page


# -- hostile input ----------------------------------------------------------------

# Raw query strings (already URL-encoded where it matters) and a word the message must hold.
HOSTILE_QUERIES = {
    "limit-zero": ("limit=0", "limit"),
    "limit-over": ("limit=1001", "limit"),
    "limit-word": ("limit=abc", "limit"),
    "limit-negative": ("limit=-1", "limit"),
    "limit-fraction": ("limit=1.5", "limit"),
    "limit-spaced": ("limit=%205", "limit"),
    "limit-arabic-digit": (f"limit={quote('٣')}", "limit"),
    "limit-huge": ("limit=" + "9" * 40, "limit"),
    "limit-empty": ("limit=", "limit"),
    "before-word": ("before=x", "before"),
    "before-zero": ("before=0", "before"),
    "before-past-int64": ("before=9223372036854775808", "before"),
    "since-garbage": ("since=garbage", "since"),
    "since-overflow": (f"since={quote('9999-12-31T23:59:59-01:00')}", "since"),
    "since-nul": ("since=2026-01-01%00", "since"),
    "since-long": ("since=" + "2026" * 5000, "since"),
    "action-percent": (f"action={quote('credential.%')}", "action"),
    "action-underscore": ("action=credential._", "action"),
    "action-like-all": (f"action={quote('%')}", "action"),
    "action-sql": (f"action={quote(chr(39) + ' OR 1=1 --')}", "action"),
    "action-long": ("action=" + "a" * 5000, "action"),
    "action-unicode": (f"action={quote('crédential.*')}", "action"),
    "credential-space": ("credential=a%20b", "data-source name"),
    "credential-path": ("credential=..%2Fx", "data-source name"),
    "credential-sql": (f"credential={quote(chr(39) + ' OR 1=1 --')}", "data-source name"),
    "credential-long": ("credential=" + "x" * 5000, "data-source name"),
    "credential-nul": ("credential=sales-db%00", "data-source name"),
    "credential-unicode": (f"credential={quote('sälës')}", "data-source name"),
    "credential-bidi": (f"credential={quote('a' + chr(0x202E) + 'b')}", "data-source name"),
    "credential-bad-utf8": ("credential=%FF%FE", "data-source name"),
    "credential-empty": ("credential=", "credential"),
    "unknown-parameter": ("limt=5", "limt"),
    "repeated-parameter": ("limit=5&limit=1000", "limit"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_QUERIES))
def test_hostile_query_is_one_clear_400(
    client: FlaskClient, web_vault: WebVault, auditor: Headers, case: str
) -> None:
    query, word = HOSTILE_QUERIES[case]
    with unchanged(web_vault):
        response = client.get(f"{AUDIT}?{query}", base_url=BASE_URL, headers=auditor)
    message = assert_api_error(response, 400, "invalid_input")
    assert word in message
    assert "Traceback" not in message and len(message) < 400


PAGE_CASES = sorted(case for case in HOSTILE_QUERIES if not case.endswith("-empty"))


@pytest.mark.parametrize("case", PAGE_CASES)
def test_hostile_filter_on_the_page_shows_the_message(client: FlaskClient, case: str) -> None:
    sign_in(client, "otto")
    query, word = HOSTILE_QUERIES[case]
    response = client.get(f"/audit?{query}", base_url=BASE_URL)
    html = response.get_data(as_text=True)
    assert response.status_code == 400, html
    assert '<p class="error" role="alert">' in html and word in html
    assert '<form method="get" action="/audit"' in html  # still there, to correct the filter
    assert "<tbody>" not in html and "Traceback" not in html


def test_the_page_form_leaves_empty_fields_out(client: FlaskClient) -> None:
    sign_in(client, "otto")
    response = client.get("/audit?credential=&action=&since=", base_url=BASE_URL)
    assert response.status_code == 200
    assert "user.added" in response.get_data(as_text=True)


# -- verifying -------------------------------------------------------------------


@pytest.mark.usefixtures("history")
def test_a_clean_trail_verifies(client: FlaskClient, auditor: Headers) -> None:
    report = _get(client, VERIFY, auditor).get_json()
    last = _events(client, auditor, limit="1")[0]["seq"]
    assert report["ok"] is True
    assert (report["first_bad_seq"], report["problem"]) == (None, None)
    assert (report["first_seq"], report["last_seq"]) == (1, last)
    assert report["summary"].startswith(f"OK: {report['entries']} entries (1..{last}), ")


@pytest.mark.usefixtures("history")
def test_verify_shows_the_last_maced_entry_and_its_time(
    client: FlaskClient, auditor: Headers
) -> None:
    # T-AU-12: what an admin compares between two looks to see a rollback.
    sign_in(client, "otto")  # recorded: before the last entry is looked up
    last = _events(client, auditor, limit="1")[0]
    report = _get(client, VERIFY, auditor).get_json()
    assert (report["head_seq"], report["head_at"]) == (last["seq"], last["at"])
    assert report["summary"].endswith(f"; last MACed entry {last['seq']} at {last['at']}")
    html = client.get("/audit", base_url=BASE_URL).get_data(as_text=True)
    assert f"last MACed entry {last['seq']} at {last['at']}</p>" in html
    assert "if either is earlier the next time you look, the vault file was rolled back" in html


@pytest.mark.usefixtures("history")
def test_an_edited_entry_fails_verification_at_that_entry(
    client: FlaskClient, web_vault: WebVault, auditor: Headers, vaults: EngineVaults
) -> None:
    _tamper(vaults, web_vault, 2)
    response = _get(client, VERIFY, auditor)
    assert response.status_code == 200  # the verdict is the answer
    report = response.get_json()
    assert (report["ok"], report["first_bad_seq"]) == (False, 2)
    assert report["problem"] == "its content does not match its digest (edited)"
    assert report["summary"] == f"FAILED at entry 2: {report['problem']}"
    sign_in(client, "otto")
    page = client.get("/audit", base_url=BASE_URL)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<p class="verdict verdict-failed" role="alert">FAILED at entry 2: ' in html
    assert "verdict-ok" not in html


# -- the page ----------------------------------------------------------------------


@pytest.mark.usefixtures("history")
def test_the_auditor_sees_the_verdict_filters_events_and_the_nav_link(
    client: FlaskClient,
) -> None:
    sign_in(client, "otto")
    html = client.get("/audit", base_url=BASE_URL).get_data(as_text=True)
    assert '<p class="verdict verdict-ok" role="status">OK: ' in html
    for field in ("credential", "action", "since"):
        assert f'<input name="{field}" value=""' in html
    for header in ("Seq", "Time", "Actor", "Channel", "Action", "Target", "Outcome", "Details"):
        assert f"<th>{header}</th>" in html
    assert '<a href="/audit">Audit</a>' in html
    # The CSP allows no inline script: every script is a file of the gateway's.
    assert re.findall(r"<script[^>]*>", html) == [
        '<script type="module" src="/static/local-time.js">'
    ]
    credentials = client.get("/credentials", base_url=BASE_URL).get_data(as_text=True)
    assert f'<a href="/audit?credential={SOURCE}">Timeline</a>' in credentials


@pytest.mark.usefixtures("history")
def test_the_page_shows_a_credential_timeline_and_pages_back(client: FlaskClient) -> None:
    sign_in(client, "otto")
    html = client.get(f"/audit?credential={SOURCE}&limit=2", base_url=BASE_URL).get_data(
        as_text=True
    )
    assert f"<h2>Timeline of credential {SOURCE}</h2>" in html
    assert f'<input name="credential" value="{SOURCE}"' in html
    assert html.count('<td class="action">credential.') == 1
    assert '<td class="action">entry-link.created</td>' in html
    older = html.split('<a class="older" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert older.startswith(f"/audit?credential={SOURCE}&before=")
    second = client.get(older, base_url=BASE_URL).get_data(as_text=True)
    assert '<td class="action">credential.updated</td>' in second
    assert '<td class="action">credential.created</td>' in second
    assert "entry-link.created" not in second


def test_filter_values_are_escaped_on_the_page(client: FlaskClient) -> None:
    sign_in(client, "otto")
    response = client.get(f"/audit?action={quote('<script>x</script>')}", base_url=BASE_URL)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<script>x" not in html and "&lt;script&gt;x" in html


def test_the_creator_sees_no_audit_link(client: FlaskClient, app: Flask) -> None:
    sign_in(client, "cleo")
    for path in ("/", "/credentials"):
        html = client.get(path, base_url=BASE_URL).get_data(as_text=True)
        assert "/audit" not in html, path
    assert client.get("/audit", base_url=BASE_URL).status_code == 403
    admin = app.test_client()
    sign_in(admin, "ada")
    assert '<a href="/audit">Audit</a>' in admin.get("/", base_url=BASE_URL).get_data(as_text=True)


def test_each_entry_names_the_caller_and_channel_of_its_request(
    client: FlaskClient, web_vault: WebVault, auditor: Headers
) -> None:
    # The vault is opened before the caller is known and then acts as the
    # caller: an entry must never say "anonymous" for an authenticated call.
    etl = bearer(new_token(web_vault, "admin", "etl"))
    answer = put_credential(client, "timeline-db", sealed_body(web_vault, "timeline-db"), etl)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    events = client.get(AUDIT, query_string={"credential": "timeline-db"}, headers=auditor)
    created = events.get_json()["events"][0]
    assert (created["action"], created["actor"], created["channel"]) == (
        "credential.created",
        "token:etl",
        "api",
    )
