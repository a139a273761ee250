"""A sealed credential goes only where it was sealed for (the trust review, item 1).

The attack: anyone who may write name N takes a blob sealed for N and posts it to
"test" (or PUTs it again) with ``type: http`` and a server of their own; the
gateway opened it and sent ``Authorization: Basic user:password`` there.  The
attacker's server here is a real HTTP listener that records every request: it
must see none.  The callers are admins (exempt from any destination policy), so
what refuses is the target sealed in the blob.
"""

from __future__ import annotations

import datetime

from flask import Flask
from flask.testing import FlaskClient

from agent_keys.secret import Secret
from tests.sealing import now_seconds, seal
from tests.service_fixtures import HttpAuthServer
from tests.web.api_helpers import (
    API,
    ORIGIN,
    UNREACHABLE_TARGET,
    assert_api_error,
    bearer,
    certificate_of,
    new_entry_link,
    new_token,
    put_credential,
    seal_for,
    sealed_body,
)
from tests.web_fixtures import BASE_URL, WebVault
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload

NAME = "sales-db"


def _attackers_body(blob: str, listener: HttpAuthServer) -> dict[str, str]:
    return {"type": "http", "server": f"{listener.base_url}/basic", "encrypted_credential": blob}


def test_a_blob_cannot_be_tested_against_a_server_of_the_callers_choosing(
    client: FlaskClient, web_vault: WebVault, http_auth_server: HttpAuthServer
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    blob = seal_for(certificate_of(web_vault), NAME)  # sealed for UNREACHABLE_TARGET
    seen = len(http_auth_server.paths_seen)  # the listener serves the whole session
    response = client.post(
        f"{API}/credentials/{NAME}/test",
        json=_attackers_body(blob, http_auth_server),
        base_url=BASE_URL,
        headers=admin,
    )
    assert "does not open" in assert_api_error(response, 400, "invalid_input")
    assert len(http_auth_server.paths_seen) == seen


def test_an_entry_link_holder_cannot_test_the_blob_elsewhere_either(
    client: FlaskClient, web_vault: WebVault, http_auth_server: HttpAuthServer
) -> None:
    secret = new_entry_link(web_vault, NAME)
    blob = seal_for(certificate_of(web_vault), NAME)
    seen = len(http_auth_server.paths_seen)
    response = client.post(
        f"{API}/entry/{secret}/test",
        json=_attackers_body(blob, http_auth_server),
        base_url=BASE_URL,
        headers=ORIGIN,
    )
    assert response.status_code in (400, 403)
    assert len(http_auth_server.paths_seen) == seen


def test_the_same_blob_cannot_repoint_a_stored_credential(
    client: FlaskClient, web_vault: WebVault, http_auth_server: HttpAuthServer
) -> None:
    owner = bearer(new_token(web_vault, "admin"))
    body = sealed_body(web_vault, NAME)
    seen = len(http_auth_server.paths_seen)
    assert put_credential(client, NAME, body, owner).status_code == 201
    moved = put_credential(client, NAME, _attackers_body(body["encrypted_credential"],
                                                         http_auth_server), owner)  # fmt: skip
    assert_api_error(moved, 400, "invalid_input")
    shown = client.get(f"{API}/credentials/{NAME}", base_url=BASE_URL, headers=owner).get_json()
    assert (shown["type"], shown["server"], shown["version"]) == (
        "postgresql",
        UNREACHABLE_TARGET.server,
        1,
    )
    client.post(f"{API}/credentials/{NAME}/test", base_url=BASE_URL, headers=owner)
    assert len(http_auth_server.paths_seen) == seen


def test_a_new_server_needs_a_blob_sealed_for_it(
    client: FlaskClient, web_vault: WebVault, http_auth_server: HttpAuthServer
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    assert put_credential(client, NAME, sealed_body(web_vault, NAME), admin).status_code == 201
    # Plain http takes an anonymous login only (a secret goes to verified https alone).
    listener = DataSource("http", f"{http_auth_server.base_url}/basic", tls="disable")
    resealed = seal(
        certificate_of(web_vault), NAME, listener, CredentialPayload("anonymous", None, None)
    )
    seen = len(http_auth_server.paths_seen)
    body = {"type": "http", "server": listener.server, "tls": "disable",
            "encrypted_credential": resealed}  # fmt: skip
    assert put_credential(client, NAME, body, admin).status_code == 200
    client.post(f"{API}/credentials/{NAME}/test", base_url=BASE_URL, headers=admin)
    assert http_auth_server.paths_seen[seen:] == ["/basic"]


def _body_sealed_at(web_vault: WebVault, issued_at: int) -> dict[str, str]:
    payload = CredentialPayload("basic", "alice", Secret.from_text("pa55"))
    blob = seal(certificate_of(web_vault), NAME, UNREACHABLE_TARGET, payload, issued_at=issued_at)
    return {"type": "postgresql", "server": UNREACHABLE_TARGET.server, "encrypted_credential": blob}


def test_a_stale_future_or_replayed_blob_is_refused(
    client: FlaskClient, web_vault: WebVault
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    hours = 3600
    stale = put_credential(
        client, NAME, _body_sealed_at(web_vault, now_seconds() - 5 * hours), admin
    )
    assert "seal it again" in assert_api_error(stale, 400, "invalid_input")
    future = put_credential(client, NAME, _body_sealed_at(web_vault, now_seconds() + hours), admin)
    assert "future" in assert_api_error(future, 400, "invalid_input")
    # The largest iat the format allows is past datetime's year 9999: refused, not a 500.
    farthest = put_credential(client, NAME, _body_sealed_at(web_vault, 2**53 - 1), admin)
    assert "future" in assert_api_error(farthest, 400, "invalid_input")
    older = _body_sealed_at(web_vault, now_seconds() - 60)
    newer = _body_sealed_at(web_vault, now_seconds())
    assert put_credential(client, NAME, newer, admin).status_code == 201
    replayed = put_credential(client, NAME, older, admin)
    assert "before the stored version" in assert_api_error(replayed, 400, "invalid_input")
    shown = client.get(f"{API}/credentials/{NAME}", base_url=BASE_URL, headers=admin).get_json()
    assert shown["version"] == 1


def test_the_admin_sets_how_long_a_seal_lives(client: FlaskClient, web_vault: WebVault) -> None:
    from vault.access.seal_policy import SealPolicy, load_seal_policy, save_seal_policy

    with web_vault.gateway() as gateway:
        assert load_seal_policy(gateway).max_age == datetime.timedelta(hours=4)
        save_seal_policy(gateway, SealPolicy(datetime.timedelta(minutes=10)))
    admin = bearer(new_token(web_vault, "admin"))
    body = _body_sealed_at(web_vault, now_seconds() - 20 * 60)
    assert "10 min" in assert_api_error(put_credential(client, NAME, body, admin), 400)


def test_a_profile_1_blob_is_refused_with_a_message_that_says_to_seal_again(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    from tests.vault.format.jwe_reference import ecdh_epk, seal_raw

    certificate = certificate_of(web_vault)
    recipient = certificate.public_key()
    epk, kek = ecdh_epk(recipient)  # type: ignore[arg-type]
    header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": certificate.thumbprint,
              "gw": certificate.gateway_id, "ds": NAME, "iat": now_seconds(),
              "epk": epk}  # fmt: skip
    blob = seal_raw(header, kek, {"type": "basic", "username": "alice", "secret": "pa55"})
    body = {"type": "postgresql", "server": UNREACHABLE_TARGET.server, "encrypted_credential": blob}
    admin = bearer(new_token(web_vault, "admin"))
    assert "profile 1" in assert_api_error(put_credential(client, NAME, body, admin), 400)
