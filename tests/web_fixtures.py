"""A vault with users, the Flask app over it, a signed-in test client, and a live HTTPS server."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.store_engines import EngineVaults
from vault.access.accounts import Accounts
from vault.gateway import Gateway
from vault.keys.tls import TlsService
from web.access import VaultHandle
from web.app import create_app
from web.server.limits import ServerLimits
from web.server.listener import listening_socket
from web.server.tls import server_ssl_context
from web.server.workers import HttpsService, serving_in_thread

BASE_URL = "https://localhost"
PASSWORDS = {
    "ada": "ada's vault passphrase 7",
    "cleo": "cleo enters credentials 8",
    "otto": "otto reads the trail 9",
}
ROLES = {"ada": "admin", "cleo": "creator", "otto": "auditor"}


@dataclass(frozen=True)
class WebVault:
    data_dir: Path
    handle: VaultHandle

    def gateway(self) -> Gateway:
        return Gateway.open(self.data_dir, make_context(), unlocked=self.handle.master_key)


@pytest.fixture
def web_template(vaults: EngineVaults) -> Path:
    """The EC vault plus an admin (ada), a creator (cleo) and an auditor (otto),
    made once per storage engine."""
    return vaults.derived("web", vaults.initialized("ec-p256"), _add_users)


def _add_users(path: Path) -> None:
    with Gateway.open(path, make_context()) as gateway:
        for name, role in ROLES.items():
            Accounts(gateway).add_user(name, role, Secret.from_text(PASSWORDS[name]))


@pytest.fixture
def copy_web_vault(
    web_template: Path, copy_vault: Callable[[Path, Path], Path]
) -> Callable[[Path], WebVault]:
    """copy_web_vault(data_dir): a fresh copy of the web template at ``data_dir``, unlocked."""

    def copy(data_dir: Path) -> WebVault:
        copy_vault(web_template, data_dir)
        with Gateway.open(data_dir, make_context()) as gateway:
            master_key = gateway.master_key
        return WebVault(data_dir, VaultHandle(data_dir, master_key))

    return copy


@pytest.fixture
def web_vault(copy_web_vault: Callable[[Path], WebVault], tmp_path: Path) -> WebVault:
    return copy_web_vault(tmp_path / "data")


@pytest.fixture
def app(web_vault: WebVault) -> Flask:
    return create_app(web_vault.handle)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign_in(client: FlaskClient, name: str) -> str:
    """Sign ``name`` in; returns the session's CSRF token."""
    response = client.post(
        "/signin",
        data={"name": name, "password": PASSWORDS[name]},
        base_url=BASE_URL,
        headers={"Origin": BASE_URL},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get("/credentials/new" if ROLES[name] != "auditor" else "/", base_url=BASE_URL)
    marker = 'name="csrf-token" content="'
    html = page.get_data(as_text=True)
    return html.split(marker, 1)[1].split('"', 1)[0]


@dataclass(frozen=True)
class LiveServer:
    url: str
    port: int
    web_vault: WebVault
    bodies: list[bytes]  # every request body the server received, for leak checks


class BodyRecorder:
    """WSGI middleware keeping a copy of each request body."""

    def __init__(self, app: Any, bodies: list[bytes]) -> None:
        self.app, self.bodies = app, bodies

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        self.bodies.append(body)
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


@pytest.fixture
def live_server(web_vault: WebVault) -> Iterator[LiveServer]:
    """The real endpoint (TLS) on a free loopback port, in a thread."""
    with served(web_vault) as server:
        yield server


@contextlib.contextmanager
def served(web_vault: WebVault, limits: ServerLimits | None = None) -> Iterator[LiveServer]:
    """``web_vault``'s endpoint (TLS) on a free loopback port, in a thread."""
    with web_vault.gateway() as gateway:
        identity = TlsService(gateway).server_identity()
    app, bodies = create_app(web_vault.handle), list[bytes]()
    app.wsgi_app = BodyRecorder(app.wsgi_app, bodies)  # type: ignore[method-assign]
    # Port 0: the kernel's pick is ours from the start (a port found free and bound
    # later could be taken in between by a parallel test worker).
    sock = listening_socket("127.0.0.1", 0)
    port: int = sock.getsockname()[1]
    service = HttpsService(app, sock, server_ssl_context(identity), limits or ServerLimits())
    try:
        with serving_in_thread(service):
            yield LiveServer(f"https://127.0.0.1:{port}", port, web_vault, bodies)
    finally:
        service.sock.close()
