"""A decision taken when a request's headers arrive is taken again where it acts
(the trust review, item 3).

The attack: send the headers, trickle the body, and change the world meanwhile
(another creator creates the name, an admin revokes the token).  Here the body
is a stream that blocks until the test lets it go, so "meanwhile" is exact: the
request has passed the edge's check and is reading its body.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.web.api_helpers import (
    API,
    assert_api_error,
    bearer,
    new_token,
    put_credential,
    sealed_body,
    session_headers,
)
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.access.accounts import Accounts
from vault.access.grants import AccessGrants
from web.access import SESSION_COOKIE_PREFIX

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

NAME = "contested-db"


class HeldBody(io.BytesIO):
    """A request body that signals when the app starts reading it, then waits."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reading = threading.Event()
        self.release = threading.Event()

    def _hold(self) -> None:
        self.reading.set()
        assert self.release.wait(timeout=30), "the test never released the body"

    def read(self, size: int | None = -1) -> bytes:
        self._hold()
        return super().read(size)

    def read1(self, size: int | None = -1) -> bytes:
        self._hold()
        return super().read1(size)

    def readinto(self, buffer: WriteableBuffer) -> int:
        self._hold()
        return super().readinto(buffer)


def _held_put(
    client: FlaskClient,
    name: str,
    body: dict[str, str],
    headers: dict[str, str],
    meanwhile: Callable[[], None],
) -> TestResponse:
    """PUT ``body`` to ``name``, running ``meanwhile`` after the edge's check, before the write."""
    data = json.dumps(body).encode()
    held = HeldBody(data)
    answer: list[TestResponse] = []

    def send() -> None:
        answer.append(
            client.put(
                f"{API}/credentials/{name}",
                input_stream=held,
                content_length=len(data),
                content_type="application/json",
                base_url=BASE_URL,
                headers=headers,
            )
        )

    sender = threading.Thread(target=send)
    sender.start()
    try:
        while not held.reading.wait(timeout=0.05):
            if not sender.is_alive():
                pytest.fail(f"the request ended before its body: {answer[0].get_data()!r}")
        meanwhile()
    finally:
        held.release.set()
        sender.join(timeout=30)
    return answer[0]


def _stored(web_vault: WebVault, name: str) -> dict[str, object] | None:
    with web_vault.gateway() as gateway:
        record = gateway.store.credential(name)
        return record.metadata() if record else None


def test_a_name_another_creator_took_meanwhile_is_not_overwritten(
    app: Flask, web_vault: WebVault
) -> None:
    first, second = (bearer(new_token(web_vault, "creator", who)) for who in ("first", "second"))

    def second_creates_it() -> None:
        taken = put_credential(app.test_client(), NAME, sealed_body(web_vault, NAME), second)
        assert taken.status_code == 201

    body = sealed_body(web_vault, NAME)
    late = _held_put(app.test_client(), NAME, body, first, second_creates_it)
    assert "only the credentials it created" in assert_api_error(late, 403)
    stored = _stored(web_vault, NAME)
    assert stored is not None and (stored["owner"], stored["version"]) == ("token:second", 1)


def test_a_token_revoked_meanwhile_changes_nothing(app: Flask, web_vault: WebVault) -> None:
    headers = bearer(new_token(web_vault, "admin", "leaving"))

    def revoke() -> None:
        with web_vault.gateway() as gateway:
            AccessGrants(gateway).revoke_token("leaving")

    late = _held_put(app.test_client(), NAME, sealed_body(web_vault, NAME), headers, revoke)
    assert "no longer valid" in assert_api_error(late, 403)
    assert _stored(web_vault, NAME) is None
    with web_vault.gateway() as gateway:
        refused = [e for e in gateway.store.audit_events() if e.action == "access.refused"]
    assert [(e.actor, e.target) for e in refused] == [("token:leaving", NAME)]


@pytest.mark.parametrize("change", ["signed-out", "removed"])
def test_a_session_ended_meanwhile_changes_nothing(
    app: Flask, web_vault: WebVault, change: str
) -> None:
    browser = app.test_client()
    csrf = sign_in(browser, "cleo")  # a creator
    cookie = browser.get_cookie(SESSION_COOKIE_PREFIX + "443", domain="localhost")
    assert cookie is not None

    def end_it() -> None:
        with web_vault.gateway() as gateway:
            if change == "signed-out":
                Accounts(gateway).close_session(cookie.value)
            else:
                Accounts(gateway).remove_user("cleo")

    late = _held_put(browser, NAME, sealed_body(web_vault, NAME), session_headers(csrf), end_it)
    assert "no longer valid" in assert_api_error(late, 403)
    assert _stored(web_vault, NAME) is None
