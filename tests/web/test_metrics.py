"""GET /metrics in this process: what a scrape reports, and who may scrape (T-MET-1, T-MET-2).

The real server, its workers and curl are in ``test_metrics_served``.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.web.api_helpers import API, bearer, new_token
from tests.web.metrics_vault import APP_EXPIRES_AT, NAMES, samples, stock_vault, value
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.metrics.settings import new_scrape_token, revoke_scrape_token, set_per_credential
from web.app import create_app
from web.metrics.requests import UNMATCHED_ROUTE
from web.metrics.worker_counts import shared_worker_counts

METRICS = "/metrics"


@pytest.fixture
def scrape_token(web_vault: WebVault, tmp_path: Path, canary: str) -> str:
    return stock_vault(web_vault, tmp_path / "files", canary)


def _scrape(client: FlaskClient, token: str) -> str:
    response = client.get(METRICS, base_url=BASE_URL, headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_data(as_text=True)


def test_a_scrape_reports_the_vaults_credentials_tests_and_expiry(
    client: FlaskClient, scrape_token: str
) -> None:
    parsed = samples(_scrape(client, scrape_token))
    assert value(parsed, "gwvault_vault_unlocked") == 1
    states = {"active": 3, "expired": 0, "disabled": 1, "deleted": 0, "unverified": 0}
    for state, count in states.items():
        assert value(parsed, "gwvault_credentials", state=state) == count, state
    assert value(parsed, "gwvault_credential_status", reason="ok") == 1
    assert value(parsed, "gwvault_credential_status", reason="database_missing") == 1
    assert value(parsed, "gwvault_credential_status", reason="untested") == 1
    assert value(parsed, "gwvault_credential_status", reason="auth_failed") == 0
    nearest = "gwvault_credential_nearest_expiry_timestamp_seconds"
    assert value(parsed, nearest) == APP_EXPIRES_AT
    # A single machine: no cluster series; no sink yet: the family without samples.
    assert not any(name.startswith("gwvault_cluster") for name, _ in parsed)
    assert any(key[0] == "process_cpu_seconds_total" for key in parsed)


def test_requests_are_counted_by_route_template_never_by_path(
    client: FlaskClient, web_vault: WebVault, scrape_token: str
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    for name in NAMES:
        client.get(f"{API}/credentials/{name}", base_url=BASE_URL, headers=admin)
    client.get(f"{API}/credentials/no-such-one", base_url=BASE_URL, headers=admin)
    client.get("/ledger-app/not/a/route", base_url=BASE_URL)
    client.open(METRICS, method="BREW", base_url=BASE_URL)
    parsed = samples(_scrape(client, scrape_token))
    route = f"{API}/credentials/<name>"
    got = value(parsed, "gwvault_http_requests_total", route=route, method="GET", status="200")
    assert got == len(NAMES)
    assert value(parsed, "gwvault_http_requests_total", route=route, method="GET",
                 status="404") == 1  # fmt: skip
    assert value(parsed, "gwvault_http_request_duration_seconds_count", route=route,
                 method="GET", status="200") == len(NAMES)  # fmt: skip
    unmatched = {labels for name, labels in parsed if name == "gwvault_http_requests_total"
                 and dict(labels)["route"] == UNMATCHED_ROUTE}  # fmt: skip
    assert {dict(labels)["method"] for labels in unmatched} == {"GET", "OTHER"}


def test_no_name_or_secret_is_in_a_scrape_unless_the_admin_names_credentials(
    client: FlaskClient, web_vault: WebVault, scrape_token: str, canary: str
) -> None:
    admin = bearer(new_token(web_vault, "admin"))
    for name in NAMES:  # the names in paths, where the counters must not keep them
        client.get(f"{API}/credentials/{name}", base_url=BASE_URL, headers=admin)
    text = _scrape(client, scrape_token)
    assert "ledger" not in text and canary not in text
    assert "gwvault_credential_info" not in text

    with web_vault.gateway() as gateway:
        set_per_credential(gateway, on=True)
    text = _scrape(client, scrape_token)
    assert canary not in text
    parsed = samples(text)
    info = {dict(labels)["name"]: dict(labels) for name, labels in parsed
            if name == "gwvault_credential_info"}  # fmt: skip
    # Only the credentials that are tested: a disabled one has no status to report.
    assert set(info) == {"ledger-app", "ledger-gone", "ledger-pg"}
    assert info["ledger-gone"]["reason"] == "database_missing"
    assert value(parsed, "gwvault_credential_expiry_timestamp_seconds",
                 name="ledger-app") == APP_EXPIRES_AT  # fmt: skip


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic Z3c6cHc=", "bearer gwm_x", "Bearer gwm_" + "A" * 43,
     "Bearer gwm_" + "A" * 500, "Bearer \x00gwm_"],
    ids=["none", "bare-scheme", "empty", "basic", "lowercase", "made-up", "huge", "nul"],
)  # fmt: skip
def test_a_scrape_without_the_token_is_refused_alike(
    client: FlaskClient, scrape_token: str, authorization: str, canary: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(METRICS, base_url=BASE_URL, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="gwvault-metrics"'
    body = response.get_data(as_text=True)
    assert "gwvault_" not in body and canary not in body and scrape_token not in body


def test_no_other_caller_may_scrape(
    client: FlaskClient, web_vault: WebVault, scrape_token: str
) -> None:
    for role in ("admin", "creator", "auditor"):
        response = client.get(METRICS, base_url=BASE_URL,
                              headers=bearer(new_token(web_vault, role)))  # fmt: skip
        assert response.status_code == 401, role
    sign_in(client, "ada")  # an admin's session cookie is no scrape token either
    assert client.get(METRICS, base_url=BASE_URL).status_code == 401


def test_a_revoked_or_replaced_token_is_refused_and_refusals_are_recorded(
    client: FlaskClient, web_vault: WebVault, scrape_token: str
) -> None:
    with web_vault.gateway() as gateway:
        fresh = new_scrape_token(gateway)
    assert client.get(METRICS, base_url=BASE_URL, headers=bearer(scrape_token)).status_code == 401
    _scrape(client, fresh)
    with web_vault.gateway() as gateway:
        revoke_scrape_token(gateway)
    assert client.get(METRICS, base_url=BASE_URL, headers=bearer(fresh)).status_code == 401
    with web_vault.gateway() as gateway:
        refused = gateway.store.find_audit("action = ?", ["metrics.scrape-refused"], limit=10)
        changes = gateway.store.find_audit("action = ?", ["metrics.changed"], limit=10)
    assert refused and all(entry.outcome == "refused" for entry in refused)
    newest = max(changes, key=lambda entry: entry.seq)
    assert newest.details == '{"per_credential":false,"token":null}'


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_and_head_reach_the_metrics(
    client: FlaskClient, scrape_token: str, method: str
) -> None:
    response = client.open(METRICS, method=method, base_url=BASE_URL, headers=bearer(scrape_token))
    assert response.status_code == 405
    head = client.head(METRICS, base_url=BASE_URL, headers=bearer(scrape_token))
    assert head.status_code == 200 and not head.get_data()


def test_rows_changed_after_a_scrape_count_as_unverified_and_record_nothing(
    client: FlaskClient, web_vault: WebVault, scrape_token: str
) -> None:
    _scrape(client, scrape_token)  # every row seen to hold, and remembered so
    with sqlite3.connect(web_vault.data_dir / "vault.db") as conn:
        conn.execute("UPDATE credential_status SET reason = 'ok' WHERE name = 'ledger-gone'")
        conn.execute("UPDATE credentials SET expires_at = NULL WHERE name = 'ledger-app'")
    with web_vault.gateway() as gateway:
        before = gateway.store.audit_tail()
    parsed = samples(_scrape(client, scrape_token))
    assert value(parsed, "gwvault_credentials", state="unverified") == 1  # ledger-app
    assert value(parsed, "gwvault_credential_status", reason="ok") == 0
    assert value(parsed, "gwvault_credential_status", reason="database_missing") == 0
    with web_vault.gateway() as gateway:
        assert gateway.store.audit_tail() == before


def test_requests_are_answered_when_the_workers_counts_directory_is_gone(
    web_vault: WebVault, scrape_token: str
) -> None:
    with shared_worker_counts() as directory:  # as serve does, before create_app
        client = create_app(web_vault.handle).test_client()
        assert client.get("/healthz", base_url=BASE_URL).status_code == 200
        assert any(directory.iterdir())  # counted in the directory
        shutil.rmtree(directory)  # a /tmp cleaner
        assert client.get("/nope", base_url=BASE_URL).status_code == 404  # a new series
        parsed = samples(_scrape(client, scrape_token))
    assert value(parsed, "gwvault_credentials", state="disabled") == 1
    assert not [key for key in parsed if key[0].startswith("gwvault_http_")]
