"""/healthz and /readyz: open, ok or not and nothing more, the reason in the server's log only.

A cluster's members are probed in tests/web/test_cluster_serving.py; here a
single machine's vault shows what each answer holds and what is logged.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.web.api_helpers import bearer
from tests.web.cluster_members import call
from tests.web_fixtures import BASE_URL, LiveServer, WebVault
from vault.data_dir import DB_FILE
from vault.store.schema import SCHEMA_VERSION
from web.access import SESSION_COOKIE_PREFIX

PROBES = ("/healthz", "/readyz")
OK = {"status": "ok"}
UNAVAILABLE = {"status": "unavailable"}
# Whatever a caller presents changes nothing: a probe takes no credential.
PRESENTED = [{}, bearer("gwv_" + "A" * 43), {"Cookie": f"{SESSION_COOKIE_PREFIX}443={'B' * 43}"}]


def _set_schema_version(data_dir: Path, version: str) -> None:
    db = sqlite3.connect(data_dir / DB_FILE)
    with db:
        db.execute("UPDATE settings SET value = ? WHERE key = 'schema_version'", [version])
    db.close()


def _server_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gwvault.server"]


@pytest.mark.parametrize("path", PROBES)
@pytest.mark.parametrize("headers", PRESENTED, ids=["nothing", "made-up-token", "made-up-session"])
def test_a_probe_needs_no_caller_and_says_only_ok(
    client: FlaskClient, path: str, headers: dict[str, str]
) -> None:
    response = client.get(path, base_url=BASE_URL, headers=headers)
    assert (response.status_code, response.get_json()) == (200, OK)
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert client.head(path, base_url=BASE_URL).status_code == 200


def test_not_ready_says_unavailable_and_logs_why_once_on_the_server(
    client: FlaskClient, web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert client.get("/readyz", base_url=BASE_URL).status_code == 200
    _set_schema_version(web_vault.data_dir, "999")
    answers = [client.get("/readyz", base_url=BASE_URL) for _ in range(3)]
    assert {(a.status_code, a.get_data(as_text=True).strip()) for a in answers} == {
        (503, '{"status":"unavailable"}')
    }
    assert client.get("/healthz", base_url=BASE_URL).get_json() == OK  # alive all along
    not_ready = [line for line in _server_lines(caplog) if line.startswith("not ready:")]
    assert not_ready == [
        f"not ready: {web_vault.data_dir / DB_FILE} has schema 999;"
        f" this gwvault reads {SCHEMA_VERSION}"
    ]
    _set_schema_version(web_vault.data_dir, str(SCHEMA_VERSION))
    assert client.get("/readyz", base_url=BASE_URL).get_json() == OK
    assert _server_lines(caplog)[-1] == "ready: serving requests again"


def test_a_vault_that_does_not_open_is_not_ready_but_alive(
    client: FlaskClient, web_vault: WebVault
) -> None:
    (web_vault.data_dir / DB_FILE).rename(web_vault.data_dir / "moved-away.db")
    ready = client.get("/readyz", base_url=BASE_URL)
    assert (ready.status_code, ready.get_json()) == (503, UNAVAILABLE)
    assert client.get("/healthz", base_url=BASE_URL).get_json() == OK  # no database touched


def test_ready_probes_stay_out_of_the_request_log_and_unready_ones_do_not(
    client: FlaskClient, web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gwvault.request")
    for path in (*PROBES, *PROBES):
        client.get(path, base_url=BASE_URL)
    assert not [r for r in caplog.records if r.name == "gwvault.request"]
    _set_schema_version(web_vault.data_dir, "999")
    client.get("/readyz", base_url=BASE_URL)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "gwvault.request"]
    assert "path=/readyz status=503" in line


def test_probes_from_one_address_are_never_refused_and_write_nothing(
    live_server: LiveServer,
) -> None:
    """A load balancer asks often from one address: no per-address limit (open
    connections, anonymous audit events) turns its probes away, and no probe
    adds to the audit trail."""
    with live_server.web_vault.gateway() as gateway:
        entries = len(gateway.store.audit_events())

    def probe(i: int) -> int:
        return call(live_server.port, "GET", PROBES[i % 2]).status

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(probe, range(60)))
    assert statuses == [200] * 60
    with live_server.web_vault.gateway() as gateway:
        assert len(gateway.store.audit_events()) == entries
