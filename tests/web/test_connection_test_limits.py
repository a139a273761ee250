"""Connection tests cannot take every worker thread (issue 15): at most 2 at once per
caller, 1 per entry link and ``connection_tests`` (default 4) per process; the excess
is refused at once with 429, a Retry-After and one clear message.

The tests run against a real listener that accepts and holds each connection
silent until released, so a test is provably running while the next is refused.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.sealing import seal
from tests.web.api_helpers import (
    API,
    ORIGIN,
    assert_api_error,
    bearer,
    certificate_of,
    new_entry_link,
    new_token,
)
from tests.web.test_openapi import assert_documented
from tests.web_fixtures import BASE_URL, WebVault
from vault.access.destination_policy import allow_network
from vault.connectors.destinations import AllowedNetwork
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from web.app import create_app

SOURCE = "probe"
BUSY = "too_many_tests"


@dataclass
class HeldServer:
    """A loopback listener that keeps every connection open and silent until released."""

    port: int
    accepted: list[socket.socket] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def wait_for(self, count: int) -> None:
        end = time.monotonic() + 10
        while len(self.accepted) < count:
            assert time.monotonic() < end, f"only {len(self.accepted)} tests connected"
            time.sleep(0.02)


@pytest.fixture
def held() -> Iterator[HeldServer]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    server, done = HeldServer(listener.getsockname()[1]), threading.Event()

    def serve() -> None:
        while not server.release.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                server.accepted.append(listener.accept()[0])
        for client in server.accepted:
            client.close()  # the tests see the end of the stream and finish
        # Once released, a test ends at once too, rather than waiting out its
        # 10 s deadline in the backlog of a listener nobody accepts on.
        while not done.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                listener.accept()[0].close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server
    server.release.set()
    done.set()
    thread.join(timeout=5)
    listener.close()


def _target(held: HeldServer) -> DataSource:
    return DataSource("http", f"http://127.0.0.1:{held.port}/", tls="disable")


def _body(web_vault: WebVault, held: HeldServer) -> dict[str, Any]:
    token = seal(
        certificate_of(web_vault), SOURCE, _target(held), CredentialPayload("anonymous", None, None)
    )
    return {"type": "http", "server": _target(held).server, "tls": "disable",
            "encrypted_credential": token}  # fmt: skip


class Requests:
    """Test requests sent from their own threads (each with its own client), as
    concurrent callers would."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.threads: list[threading.Thread] = []
        self.answers: list[TestResponse] = []

    def post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> TestResponse:
        return self.app.test_client().post(url, json=body, base_url=BASE_URL, headers=headers)

    def start(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        thread = threading.Thread(
            target=lambda: self.answers.append(self.post(url, body, headers)), daemon=True
        )
        thread.start()
        self.threads.append(thread)

    def finish(self, held: HeldServer) -> list[int]:
        held.release.set()
        for thread in self.threads:
            thread.join(timeout=15)
        return sorted(answer.status_code for answer in self.answers)


def _assert_busy(app: Flask, response: TestResponse, says: str) -> None:
    message = assert_api_error(response, 429, BUSY)
    assert says in message
    assert response.headers["Retry-After"] == "5"
    assert_documented(app, response)


def test_a_caller_runs_two_tests_at_once_and_others_still_may(
    app: Flask, web_vault: WebVault, held: HeldServer
) -> None:
    first, second = (
        bearer(new_token(web_vault, "admin", "a")),
        bearer(new_token(web_vault, "admin", "b")),
    )
    url, body, calls = f"{API}/credentials/{SOURCE}/test", _body(web_vault, held), Requests(app)
    calls.start(url, body, first)
    calls.start(url, body, first)
    held.wait_for(2)
    started = time.monotonic()
    _assert_busy(app, calls.post(url, body, first), "you already have 2 connection tests running")
    assert time.monotonic() - started < 2.0  # refused at once, not queued
    calls.start(url, body, second)
    held.wait_for(3)
    assert calls.finish(held) == [200, 200, 200]
    assert calls.post(url, body, first).status_code == 200  # the slots were given back


def test_the_process_runs_at_most_its_configured_number(
    web_vault: WebVault, held: HeldServer
) -> None:
    app = create_app(web_vault.handle, connection_tests=2)
    callers = [bearer(new_token(web_vault, "admin", name)) for name in ("a", "b", "c")]
    url, body, calls = f"{API}/credentials/{SOURCE}/test", _body(web_vault, held), Requests(app)
    calls.start(url, body, callers[0])
    calls.start(url, body, callers[1])
    held.wait_for(2)
    _assert_busy(app, calls.post(url, body, callers[2]), "as many connection tests as it allows")
    assert calls.finish(held) == [200, 200]


def test_an_entry_link_runs_one_test_at_a_time(
    app: Flask, web_vault: WebVault, held: HeldServer
) -> None:
    with web_vault.gateway() as gateway:
        allow_network(gateway, AllowedNetwork.parse("127.0.0.1/32", held.port))
    links = [new_entry_link(web_vault, SOURCE, target=_target(held)) for _ in range(2)]
    body, calls = _body(web_vault, held), Requests(app)
    calls.start(f"{API}/entry/{links[0]}/test", body, ORIGIN)
    held.wait_for(1)
    _assert_busy(app, calls.post(f"{API}/entry/{links[0]}/test", body, ORIGIN), "this entry link")
    calls.start(f"{API}/entry/{links[1]}/test", body, ORIGIN)
    held.wait_for(2)
    assert calls.finish(held) == [200, 200]


def test_a_failed_test_gives_its_slot_back(
    app: Flask, web_vault: WebVault, held: HeldServer
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    url, calls = f"{API}/credentials/{SOURCE}/test", Requests(app)
    garbage = {**_body(web_vault, held), "encrypted_credential": "a.b.c.d.e"}
    for _ in range(3):
        assert_api_error(calls.post(url, garbage, admin), 400, "invalid_input")
    calls.start(url, _body(web_vault, held), admin)
    calls.start(url, _body(web_vault, held), admin)
    held.wait_for(2)
    assert calls.finish(held) == [200, 200]


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "4", None])
def test_the_limit_must_be_a_positive_whole_number(
    web_vault: WebVault, bad: Callable[[], Any]
) -> None:
    with pytest.raises(ValueError, match="1 or more"):
        create_app(web_vault.handle, connection_tests=bad)  # type: ignore[arg-type]
