"""Hostile input to the API gets one clear 4xx in the error shape and changes nothing.

Every refusal runs inside ``unchanged``: all durable rows (everything but the
audit trail, its head note and the sessions) must be the same afterwards.  None may be a 500.
"""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.api_helpers import (
    API,
    ORIGIN,
    assert_api_error,
    bearer,
    certificate_of,
    foreign_certificate,
    new_entry_link,
    new_token,
    put_credential,
    seal_for,
    sealed_body,
    store_as_ada,
    unchanged,
)
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.access.grants import AccessGrants
from web.api import AUDIT_FILTERS

SOURCE = "sales-db"  # stored by ada (a user, so owner "user:ada") before each test
URL = f"{API}/credentials/{SOURCE}"
JSON = "application/json"
INVALID = "invalid_input"
Body = dict[str, Any]
Headers = dict[str, str]


@pytest.fixture
def admin(web_vault: WebVault) -> Headers:
    return bearer(new_token(web_vault, "admin"))


@pytest.fixture
def stored(app: Flask, web_vault: WebVault) -> Body:
    return store_as_ada(app, web_vault, SOURCE)


def _raw(data: str | bytes, content_type: str | None = JSON) -> dict[str, Any]:
    return {"data": data, "content_type": content_type}


def _json(body: object) -> dict[str, Any]:
    return _raw(json.dumps(body))


CODES = {400: "invalid_input", 413: "body_too_large", 415: "unsupported_media_type"}
BAD_BODIES: dict[str, tuple[Callable[[Body], dict[str, Any]], int]] = {
    "malformed-json": (lambda b: _raw('{"type": "postgresql",'), 400),
    "empty-body": (lambda b: _raw(b""), 400),
    "json-null": (lambda b: _json(None), 400),
    "json-array": (lambda b: _json([b]), 400),
    "json-string": (lambda b: _json(json.dumps(b)), 400),
    "deep-nesting": (lambda b: _raw("[" * 60_000), 400),
    "nan": (lambda b: _json({**b, "database": float("nan")}), 400),
    "unknown-member": (lambda b: _json({**b, "secret": "pw"}), 400),
    "surrogate-member": (lambda b: _json({**b, "\ud800": 1}), 400),
    "no-type": (lambda b: _json({k: v for k, v in b.items() if k != "type"}), 400),
    "no-server": (lambda b: _json({k: v for k, v in b.items() if k != "server"}), 400),
    "no-blob": (lambda b: _json({k: v for k, v in b.items() if k != "encrypted_credential"}), 400),
    "null-type": (lambda b: _json({**b, "type": None}), 400),
    "number-member": (lambda b: _json({**b, "type": 5}), 400),
    "list-member": (lambda b: _json({**b, "server": [b["server"]]}), 400),
    "object-member": (lambda b: _json({**b, "encrypted_credential": {}}), 400),
    "bool-member": (lambda b: _json({**b, "database": True}), 400),
    "surrogate-server": (lambda b: _json({**b, "server": "\ud800"}), 400),
    # Last one wins in json.loads: a decoy first, the sealed value last (T-WEB-9).
    "duplicate-member": (lambda b: _raw('{"type": "sqlite", ' + json.dumps(b)[1:]), 400),
    "duplicate-same-value": (
        lambda b: _raw(json.dumps(b)[:-1] + f', "server": {json.dumps(b["server"])}}}'), 400
    ),
    "unknown-type": (lambda b: _json({**b, "type": "oracle"}), 400),
    "text-plain": (lambda b: _raw(json.dumps(b), "text/plain"), 415),
    "no-content-type": (lambda b: _raw(json.dumps(b), None), 415),
    "form": (lambda b: {"data": b}, 415),
    "oversized": (lambda b: _json({**b, "database": "d" * 70_000}), 413),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_body_is_refused(
    client: FlaskClient, web_vault: WebVault, admin: Headers, stored: Body, case: str
) -> None:
    make, status = BAD_BODIES[case]
    with unchanged(web_vault):
        response = client.put(URL, base_url=BASE_URL, headers=admin, **make(stored))
    assert_api_error(response, status, CODES[status])


def _flip(blob: str, at: int) -> str:
    return blob[:at] + ("A" if blob[at] != "A" else "B") + blob[at + 1 :]


BAD_BLOBS: dict[str, Callable[[WebVault, str], str]] = {
    "sealed-for-another-source": lambda v, blob: seal_for(certificate_of(v), "hr-db"),
    "sealed-for-another-gateway": lambda v, blob: seal_for(
        foreign_certificate(v, same_gateway_id=False), SOURCE
    ),
    "sealed-to-a-forged-certificate": lambda v, blob: seal_for(
        foreign_certificate(v, same_gateway_id=True), SOURCE
    ),
    "truncated": lambda v, blob: blob[:-12],
    "part-missing": lambda v, blob: ".".join(blob.split(".")[:4]),
    "flipped-ciphertext": lambda v, blob: _flip(blob, len(blob) - 30),
    "empty": lambda v, blob: "",
}


@pytest.mark.parametrize("case", sorted(BAD_BLOBS))
def test_blob_that_does_not_open_here_is_refused(
    client: FlaskClient, web_vault: WebVault, admin: Headers, stored: Body, case: str
) -> None:
    blob = BAD_BLOBS[case](web_vault, stored["encrypted_credential"])
    body = {**stored, "encrypted_credential": blob}
    with unchanged(web_vault):
        assert_api_error(put_credential(client, SOURCE, body, admin), 400, INVALID)
        tested = client.post(f"{URL}/test", json=body, base_url=BASE_URL, headers=admin)
        assert_api_error(tested, 400, INVALID)


_SEAL = (
    r'{"datasource": "sales-db", "type": "mysql", "server": "db",'
    r' "username": "%s", "secret": "%s"}'
)
SEAL_REQUESTS = {
    "lone-high-surrogate-secret": _SEAL % ("u", r"\ud800"),
    "lone-low-surrogate-secret": _SEAL % ("u", r"a\udfffb"),
    "lone-surrogate-username": _SEAL % (r"\udc00", "p"),
    "reversed-pair": _SEAL % ("u", r"\ude00\ud83d"),
    "duplicate-secret": '{"datasource": "sales-db", "username": "u", "secret": "a", "secret": "b"}',
    "duplicate-datasource": '{"datasource": "x", "datasource": "sales-db", "username": "u",'
    ' "secret": "b"}',
}


@pytest.mark.parametrize("case", sorted(SEAL_REQUESTS))
def test_encrypt_value_refuses_text_that_is_no_unicode_or_a_repeated_member(
    client: FlaskClient, web_vault: WebVault, case: str
) -> None:
    # A lone surrogate cannot be encoded as UTF-8: it was a 500 (T-WEB-9).
    headers = bearer(new_token(web_vault, "creator"))
    with unchanged(web_vault):
        response = client.post(
            f"{API}/encrypt-value", base_url=BASE_URL, headers=headers, **_raw(SEAL_REQUESTS[case])
        )
    assert_api_error(response, 400, INVALID)


def test_encrypt_value_takes_a_character_outside_the_bmp_as_an_escaped_pair(
    client: FlaskClient, web_vault: WebVault
) -> None:
    headers = bearer(new_token(web_vault, "creator"))
    body = _SEAL % ("u", r"pa\ud83d\ude00ss")
    response = client.post(f"{API}/encrypt-value", base_url=BASE_URL, headers=headers, **_raw(body))
    assert response.status_code == 200, response.get_data(as_text=True)


HOSTILE_NAMES = [("../x", 404), ("..%2Fx", 404), ("a b", 400), ("x" * 200, 400), ("-x", 400),
                 (".hidden", 400), ("sälës", 400), ("a;b", 400), ("a\u202eb", 400)]  # fmt: skip


@pytest.mark.parametrize(("name", "status"), HOSTILE_NAMES)
def test_hostile_name_in_the_url_is_refused(
    client: FlaskClient, web_vault: WebVault, admin: Headers, name: str, status: int
) -> None:
    body = sealed_body(web_vault, name)  # sealed for that very name: the name is what fails
    url = f"{API}/credentials/{quote(name, safe='/%')}"
    with unchanged(web_vault):
        response = client.put(url, json=body, base_url=BASE_URL, headers=admin)
    assert_api_error(response, status, INVALID if status == 400 else "not_found")


LOGIN_IN_SERVER = {
    "postgresql": "alice:hunter2secret@db.example:5432",
    "mysql": "alice:hunter2secret@db",
    "http": "https://alice:hunter2secret@api.example/",
}


@pytest.mark.parametrize("kind", sorted(LOGIN_IN_SERVER))
def test_server_with_a_login_in_it_is_refused(
    client: FlaskClient, web_vault: WebVault, admin: Headers, stored: Body, kind: str
) -> None:
    body = {**stored, "type": kind, "server": LOGIN_IN_SERVER[kind]}
    with unchanged(web_vault):
        response = put_credential(client, SOURCE, body, admin)
    assert "hunter2secret" not in assert_api_error(response, 400, INVALID)


def test_unknown_and_revoked_tokens_are_unauthenticated(
    client: FlaskClient, web_vault: WebVault, stored: Body
) -> None:
    token = new_token(web_vault, "admin", "retired")
    with web_vault.gateway() as gateway:
        AccessGrants(gateway).revoke_token("retired")
    with unchanged(web_vault):
        for headers in (bearer(token), bearer("gwv_" + "Z" * 43), bearer(""), bearer("x" * 5000)):
            response = put_credential(client, SOURCE, stored, headers)
            assert_api_error(response, 401, "unauthenticated")
            listing = client.get(f"{API}/credentials", base_url=BASE_URL, headers=headers)
            assert_api_error(listing, 401, "unauthenticated")


def test_session_state_change_needs_csrf_token_and_origin(
    client: FlaskClient, web_vault: WebVault, stored: Body
) -> None:
    csrf = sign_in(client, "ada")
    refused = (
        ORIGIN,  # no CSRF token
        {**ORIGIN, "X-CSRF-Token": csrf[:-1]},
        {"Origin": "https://evil.example", "X-CSRF-Token": csrf},
        {"X-CSRF-Token": csrf},  # no Origin and no Referer
    )
    with unchanged(web_vault):
        for headers in refused:
            assert_api_error(put_credential(client, SOURCE, stored, headers), 403, "forbidden")
            deleted = client.delete(URL, base_url=BASE_URL, headers=headers)
            assert_api_error(deleted, 403, "forbidden")


def test_entry_link_puts_its_own_source_once(client: FlaskClient, web_vault: WebVault) -> None:
    secret = new_entry_link(web_vault, "hr-db")
    url = f"{API}/entry/{secret}"
    body = sealed_body(web_vault, "hr-db")
    with unchanged(web_vault):  # another source's blob; the link as an API token
        other = client.put(
            url, json=sealed_body(web_vault, SOURCE), base_url=BASE_URL, headers=ORIGIN
        )
        assert_api_error(other, 400, INVALID)
        as_token = put_credential(client, SOURCE, sealed_body(web_vault, SOURCE), bearer(secret))
        assert_api_error(as_token, 401, "unauthenticated")
    first = client.put(url, json=body, base_url=BASE_URL, headers=ORIGIN)
    assert first.status_code == 201 and first.get_json()["name"] == "hr-db"
    with unchanged(web_vault):
        again = client.put(url, json=body, base_url=BASE_URL, headers=ORIGIN)
        assert_api_error(again, 403, "forbidden")
        assert_api_error(client.get(url, base_url=BASE_URL), 403, "forbidden")


def test_expired_entry_link_is_refused(client: FlaskClient, web_vault: WebVault) -> None:
    an_hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    secret = new_entry_link(web_vault, "hr-db", clock=lambda: an_hour_ago)
    url = f"{API}/entry/{secret}"
    body = sealed_body(web_vault, "hr-db")
    with unchanged(web_vault):
        for response in (
            client.get(url, base_url=BASE_URL),
            client.get(f"{url}/certificate.json", base_url=BASE_URL),
            client.post(f"{url}/test", json=body, base_url=BASE_URL, headers=ORIGIN),
            client.put(url, json=body, base_url=BASE_URL, headers=ORIGIN),
        ):
            assert_api_error(response, 403, "forbidden")


def test_unreachable_source_is_a_result_not_an_error(
    client: FlaskClient, web_vault: WebVault, admin: Headers, stored: Body
) -> None:
    # A stored credential's test records its status (and a change of it); nothing else.
    with unchanged(web_vault, results=frozenset({"credential_status", "notify_events"})):
        for body in (None, stored):  # the stored credential, then an unsaved one
            response = client.post(f"{URL}/test", json=body, base_url=BASE_URL, headers=admin)
            assert response.status_code == 200, response.get_data(as_text=True)
            result = response.get_json()
            assert result["ok"] is False and result["message"], result


def test_chunked_unsaved_credential_is_tested_not_ignored(
    client: FlaskClient, web_vault: WebVault, admin: Headers
) -> None:
    body = json.dumps(sealed_body(web_vault, "hr-db")).encode()
    response = client.post(
        f"{API}/credentials/hr-db/test",
        input_stream=io.BytesIO(body),
        content_type=JSON,
        base_url=BASE_URL,
        headers={**admin, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as cheroot sets it when chunked
    )
    assert response.status_code == 200 and response.get_json()["ok"] is False


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
PLAUSIBLE = st.sampled_from(["postgresql", "http", "127.0.0.1:1", "db", "eyJ.a.b.c.d", ""])
MEMBERS = st.sampled_from(["type", "server", "database", "encrypted_credential"])
WELL_FORMED = st.fixed_dictionaries(
    {m: PLAUSIBLE | st.text() for m in ("type", "server", "encrypted_credential")},
    optional={"database": st.none() | st.text()},
)  # past the shape checks, so the data-source and blob checks see random input
BODIES = (
    JSON_VALUES
    | WELL_FORMED
    | st.dictionaries(MEMBERS | st.text(max_size=8), PLAUSIBLE | JSON_VALUES, max_size=5)
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES)
def test_random_json_body_is_a_4xx_that_changes_nothing(
    client: FlaskClient, web_vault: WebVault, admin: Headers, stored: Body, body: object
) -> None:
    with unchanged(web_vault):
        response = client.put(
            f"{API}/credentials/x", base_url=BASE_URL, headers=admin, **_json(body)
        )
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert_api_error(response, response.status_code)


# Printable or not, any code point a URL can carry (surrogates cannot be UTF-8 encoded).
QUERY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
AUDIT_QUERIES = st.dictionaries(
    st.sampled_from(sorted(AUDIT_FILTERS)) | QUERY_TEXT.filter(bool),
    st.sampled_from(["1", "1000", "credential.*", "sales-db", "2026-01-01", ""]) | QUERY_TEXT,
    max_size=5,
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=AUDIT_QUERIES)
def test_random_audit_query_is_a_page_or_one_400(
    client: FlaskClient, admin: Headers, params: dict[str, str]
) -> None:
    url = f"{API}/audit?{urlencode(params)}"
    response = client.get(url, base_url=BASE_URL, headers=admin)
    if response.status_code == 200:
        assert set(response.get_json()) == {"events", "next_before"}
    else:
        assert_api_error(response, 400, INVALID)
