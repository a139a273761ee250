"""Connection tests through the API: the destination policy and classified results by role.

A creator, an API token of role creator and an entry link may not point "test"
at the gateway itself or the metadata service (T-CN-2), and never see what the
far end said (T-CN-3); an admin may test anything and sees the driver's words.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.sealing import seal
from tests.service_fixtures import nobody_connected
from tests.web.api_helpers import (
    API,
    ORIGIN,
    bearer,
    certificate_of,
    new_entry_link,
    new_token,
    seal_for,
    session_headers,
)
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.access.destination_policy import allow_network
from vault.connectors.connection import SUMMARIES
from vault.connectors.destinations import AllowedNetwork
from vault.format.data_source import DataSource, parse_data_source_type
from vault.format.encrypted_credential import CredentialPayload

BANNER = "GWV-BANNER-7d1e2f far-end words"
SOURCE = "probe"


@pytest.fixture
def banner_port() -> Iterator[int]:
    """A TCP server that answers anything with a distinctive banner line."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                with client:
                    client.sendall(f"{BANNER}\r\n".encode())

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def _target(kind: str, server: str) -> DataSource:
    return DataSource(parse_data_source_type(kind), server, tls="disable")


def _body(web_vault: WebVault, kind: str, server: str) -> dict[str, Any]:
    """A test body sealed for its target; http gets an anonymous login (a secret never
    goes over plain http)."""
    certificate, target = certificate_of(web_vault), _target(kind, server)
    if kind == "http":
        token = seal(certificate, SOURCE, target, CredentialPayload("anonymous", None, None))
    else:
        token = seal_for(certificate, SOURCE, target)
    return {"type": kind, "server": server, "tls": "disable", "encrypted_credential": token}


def _test(client: FlaskClient, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = client.post(url, json=body, base_url=BASE_URL, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _callers(
    client: FlaskClient, web_vault: WebVault, body: dict[str, Any]
) -> dict[str, tuple[str, dict[str, str]]]:
    """Each kind of caller who is not an admin: its test URL and headers (the entry
    link made by an admin for the target the body names)."""
    test_url = f"{API}/credentials/{SOURCE}/test"
    link = new_entry_link(web_vault, SOURCE, target=_target(body["type"], body["server"]))
    return {
        "creator session": (test_url, session_headers(sign_in(client, "cleo"))),
        "creator token": (test_url, bearer(new_token(web_vault, "creator"))),
        "entry link": (f"{API}/entry/{link}/test", ORIGIN),
    }


@pytest.mark.parametrize(
    ("kind", "server"),
    [
        ("postgresql", "127.0.0.1:{port}"),
        ("mysql", "localhost:{port}"),
        ("http", "http://127.0.0.1:{port}/"),
        ("http", "http://[::ffff:127.0.0.1]:{port}/"),
    ],
)
def test_callers_who_are_not_admins_cannot_reach_the_gateway_itself(
    client: FlaskClient, web_vault: WebVault, mute_listener: socket.socket, kind: str, server: str
) -> None:
    body = _body(web_vault, kind, server.format(port=mute_listener.getsockname()[1]))
    for who, (url, headers) in _callers(client, web_vault, body).items():
        result = _test(client, url, body, headers)
        assert result == {
            "ok": False,
            "reason": "refused_by_policy",
            "message": SUMMARIES["refused_by_policy"],
        }, who
    assert nobody_connected(mute_listener)


def test_callers_who_are_not_admins_cannot_reach_the_metadata_service(
    client: FlaskClient, web_vault: WebVault
) -> None:
    body = _body(web_vault, "http", "http://169.254.169.254/latest/meta-data/")
    for who, (url, headers) in _callers(client, web_vault, body).items():
        assert _test(client, url, body, headers)["reason"] == "refused_by_policy", who


def test_an_admin_may_test_loopback_and_sees_the_drivers_words(
    client: FlaskClient, web_vault: WebVault, banner_port: int
) -> None:
    # A server that answers at once (a silent one would hold the test for the
    # API's whole 10 s deadline); its banner in the detail shows the test connected.
    headers = session_headers(sign_in(client, "ada"))
    body = _body(web_vault, "http", f"http://127.0.0.1:{banner_port}/")
    result = _test(client, f"{API}/credentials/{SOURCE}/test", body, headers)
    assert result["reason"] == "unreachable" and "GWV-BANNER" in result["detail"], result


def test_an_allowed_server_answers_callers_who_are_not_admins_without_its_words(
    client: FlaskClient, web_vault: WebVault, banner_port: int
) -> None:
    with web_vault.gateway() as gateway:
        allow_network(gateway, AllowedNetwork.parse("127.0.0.1/32", banner_port))
    body = _body(web_vault, "http", f"http://127.0.0.1:{banner_port}/")
    for who, (url, headers) in _callers(client, web_vault, body).items():
        result = _test(client, url, body, headers)
        assert result == {"ok": False, "reason": "unreachable", "message": SUMMARIES["unreachable"]}
        assert "GWV-BANNER" not in str(result), who
    admin = session_headers(sign_in(client, "ada"))
    seen = _test(client, f"{API}/credentials/{SOURCE}/test", body, admin)
    assert "GWV-BANNER" in seen["detail"]  # an admin diagnosing a failure gets the words


def test_the_audit_trail_keeps_the_reason_of_a_refused_test(
    client: FlaskClient, web_vault: WebVault, mute_listener: socket.socket
) -> None:
    body = _body(web_vault, "postgresql", f"127.0.0.1:{mute_listener.getsockname()[1]}")
    url, headers = _callers(client, web_vault, body)["creator session"]
    _test(client, url, body, headers)
    with web_vault.gateway() as gateway:
        tested = [e for e in gateway.store.audit_events() if e.action == "credential.tested"]
    assert (tested[-1].actor, tested[-1].outcome) == ("user:cleo", "refused")
    assert '"reason":"refused_by_policy"' in tested[-1].details
