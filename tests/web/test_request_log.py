"""One log line per request, naming the path with its secrets redacted, never a secret."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from tests.web.api_helpers import API, bearer, new_entry_link, new_token
from tests.web_fixtures import BASE_URL, WebVault


def request_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gwvault.request"]


def test_each_request_logs_method_path_status_time_id_and_actor(
    client: FlaskClient, web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    token = new_token(web_vault, "admin")
    caplog.set_level(logging.INFO, logger="gwvault.request")
    client.get(f"{API}/status", base_url=BASE_URL, headers=bearer(token))
    client.get(f"{API}/status", base_url=BASE_URL)
    authorized, anonymous = request_lines(caplog)
    fields = dict(part.split("=", 1) for part in authorized.split()[1:])
    assert fields["method"] == "GET" and fields["path"] == "/api/v1/status"
    assert fields["status"] == "200" and float(fields["ms"]) >= 0
    assert len(fields["id"]) == 32 and fields["actor"].startswith("token:")
    assert "status=401" in anonymous and "actor=anonymous" in anonymous
    assert token not in authorized


def test_an_entry_link_secret_never_reaches_the_log(
    client: FlaskClient, web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    secret = new_entry_link(web_vault, "hr-db")
    caplog.set_level(logging.INFO, logger="gwvault.request")
    client.get(f"{API}/entry/{secret}", base_url=BASE_URL)
    client.get(f"/entry/{secret}", base_url=BASE_URL)
    client.get(f"/no-such-page/{secret}?token={secret}", base_url=BASE_URL)  # no route
    lines = request_lines(caplog)
    assert len(lines) == 3
    assert all(secret not in line for line in lines)
    assert "path=/api/v1/entry/<secret>" in lines[0] and "path=/entry/<secret>" in lines[1]
    assert "path=(no-route)/no-such-page/..." in lines[2]


def test_a_forged_method_or_id_cannot_break_the_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gwvault.request")
    client.open("/", method="GET\nFAKE", base_url=BASE_URL)
    (line,) = request_lines(caplog)
    assert "\n" not in line and "method=GET?FAKE" in line


def test_a_path_names_what_was_asked_for_and_redacts_only_secrets(
    client: FlaskClient, web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    token = new_token(web_vault, "admin")
    caplog.set_level(logging.INFO, logger="gwvault.request")
    client.get(f"{API}/credentials/hr-db?x={token}", base_url=BASE_URL, headers=bearer(token))
    client.get("/static/app.css", base_url=BASE_URL)
    client.get(f"/{token}", base_url=BASE_URL)  # a long unknown segment: not logged
    named, static, unknown = request_lines(caplog)
    assert "path=/api/v1/credentials/hr-db status=404" in named
    assert "path=/static/app.css status=200" in static
    assert "path=(no-route)/<long> " in unknown
    assert all(token not in line for line in (named, static, unknown))
