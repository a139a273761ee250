"""web/openapi.json: valid OpenAPI 3.1, exactly the api blueprint, and real answers fit it."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from werkzeug.test import TestResponse

from tests.web.api_helpers import (
    API,
    ORIGIN,
    bearer,
    new_entry_link,
    new_token,
    put_credential,
    sealed_body,
)
from tests.web_fixtures import BASE_URL, WebVault, sign_in
from vault.data_dir import DB_FILE
from vault.metrics.settings import new_scrape_token
from web.api import AUDIT_FILTERS, OPENAPI_PATH

DOCUMENT: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


DOCUMENTED_BLUEPRINTS = ("api.", "health.", "metrics.")
PROBE_PATHS = ("/healthz", "/readyz")
ROOT_PATHS = (*PROBE_PATHS, "/metrics")  # at the endpoint's root, not under /api/v1


def _template(rule: str) -> str:
    """A Flask rule as a path of the document: the api blueprint's under the
    document's server (/api/v1), the probes at the root (their own server)."""
    if rule in ROOT_PATHS:
        return rule
    assert rule.startswith(API + "/")
    return _CONVERTER.sub(r"{\1}", rule.removeprefix(API))


def _api_operations(app: Flask) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(DOCUMENTED_BLUEPRINTS):
            methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
            routes.setdefault(_template(rule.rule), set()).update(methods)
    return routes


def _operation(path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = DOCUMENT["paths"][path][method]
    return operation


def _deref(obj: dict[str, Any]) -> dict[str, Any]:
    """Follow an OpenAPI-level ``$ref`` (responses, parameters) inside the document."""
    while "$ref" in obj:
        target: Any = DOCUMENT
        for part in obj["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        obj = target
    return obj


def assert_documented(app: Flask, response: TestResponse) -> None:
    """The response's status is documented for its operation, and its body fits the schema."""
    request = response.request
    rule, _args = app.url_map.bind("localhost").match(
        request.path, request.method, return_rule=True
    )
    operation = _operation(_template(rule.rule), request.method.lower())
    status = str(response.status_code)
    assert status in operation["responses"], f"{request.method} {rule.rule} -> {status}"
    documented = _deref(operation["responses"][status])
    content = documented.get("content")
    if content is None:
        assert response.data == b""
        return
    assert response.mimetype in content, (response.mimetype, list(content))
    if response.mimetype != "application/json":
        return
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; components ride along for "#/..." refs.
    schema = {**content[response.mimetype]["schema"], "components": DOCUMENT["components"]}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [e.message for e in validator.iter_errors(response.get_json())]
    assert not errors, errors


@pytest.fixture
def admin(web_vault: WebVault) -> dict[str, str]:
    return bearer(new_token(web_vault, "admin"))


def test_document_is_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT, cls=OpenAPIV31SpecValidator)
    assert [server["url"] for server in DOCUMENT["servers"]] == [API]


def test_every_route_is_documented_and_every_operation_exists(app: Flask) -> None:
    documented = {
        path: {method for method in item if method in HTTP_METHODS}
        for path, item in DOCUMENT["paths"].items()
    }
    assert documented == _api_operations(app)


def test_path_parameters_match_the_routes(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(DOCUMENTED_BLUEPRINTS):
            continue
        item = DOCUMENT["paths"][_template(rule.rule)]
        declared = {
            _deref(p)["name"] for p in item.get("parameters", []) if _deref(p)["in"] == "path"
        }
        assert declared == set(rule.arguments), rule.rule


def test_strict_bodies_are_closed_objects() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for name in ("SealedCredential", "EncryptValueRequest", "CredentialMetadata", "Error"):
        assert schemas[name]["additionalProperties"] is False, name


def test_every_error_answer_is_the_error_object() -> None:
    error = {"$ref": "#/components/schemas/Error"}
    statuses: set[str] = set()
    for path, item in DOCUMENT["paths"].items():
        if path in PROBE_PATHS:
            continue  # ok or unavailable, nothing more (test_probes_are_open_and_say_only_ok)
        for method in HTTP_METHODS & set(item):
            for status, answer in item[method]["responses"].items():
                if int(status) >= 400:
                    statuses.add(status)
                    assert _deref(answer)["content"] == {"application/json": {"schema": error}}
    assert statuses == {"400", "401", "403", "404", "409", "413", "415", "429", "503"}


def test_gateway_answers_fit_the_document(
    app: Flask, client: FlaskClient, admin: dict[str, str]
) -> None:
    for path in ("/status", "/certificate", "/certificate.json", "/credentials", "/openapi.json"):
        response = client.get(f"{API}{path}", base_url=BASE_URL, headers=admin)
        assert response.status_code == 200, path
        assert_documented(app, response)


def test_credential_lifecycle_answers_fit_the_document(
    app: Flask, client: FlaskClient, web_vault: WebVault, admin: dict[str, str]
) -> None:
    body = sealed_body(web_vault, "sales-db")
    created = put_credential(client, "sales-db", body, admin)
    updated = put_credential(client, "sales-db", body, admin)
    assert (created.status_code, updated.status_code) == (201, 200)
    calls = [
        created,
        updated,
        client.get(f"{API}/credentials", base_url=BASE_URL, headers=admin),
        client.get(f"{API}/credentials/sales-db", base_url=BASE_URL, headers=admin),
        client.post(f"{API}/credentials/sales-db/test", base_url=BASE_URL, headers=admin),
        client.post(
            f"{API}/credentials/sales-db/test", json=body, base_url=BASE_URL, headers=admin
        ),
        client.post(
            f"{API}/encrypt-value",
            json={
                "datasource": "hr-db",
                "type": "mysql",
                "server": "db",
                "username": "bob",
                "secret": "bob's secret",
            },
            base_url=BASE_URL,
            headers=admin,
        ),
        client.delete(f"{API}/credentials/sales-db", base_url=BASE_URL, headers=admin),
    ]
    assert [c.status_code for c in calls] == [201, 200, 200, 200, 200, 200, 200, 204]
    sales = f"{API}/credentials/sales-db"
    life = [
        client.get(f"{API}/credentials?deleted=true", base_url=BASE_URL, headers=admin),
        client.post(f"{sales}/disable", base_url=BASE_URL, headers=admin),  # deleted: 409
        client.post(f"{sales}/restore", base_url=BASE_URL, headers=admin),
        client.post(f"{sales}/disable", base_url=BASE_URL, headers=admin),
        client.post(f"{sales}/test", base_url=BASE_URL, headers=admin),  # disabled: 409
        client.post(f"{sales}/enable", base_url=BASE_URL, headers=admin),
        client.post(f"{sales}/purge", base_url=BASE_URL, headers=admin),  # not deleted: 409
        client.delete(sales, base_url=BASE_URL, headers=admin),
        client.post(f"{sales}/purge", base_url=BASE_URL, headers=admin),
    ]
    assert [c.status_code for c in life] == [200, 409, 200, 200, 409, 200, 409, 204, 204]
    assert [life[1].json["error"]["code"], life[4].json["error"]["code"]] == [  # type: ignore[index]
        "credential_unavailable",
        "credential_unavailable",
    ]
    calls += life
    for response in calls:
        assert_documented(app, response)


def test_entry_link_answers_fit_the_document(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    secret = new_entry_link(web_vault, "hr-db")
    body = sealed_body(web_vault, "hr-db")
    entry = f"{API}/entry/{secret}"
    calls = [
        client.get(entry, base_url=BASE_URL),
        client.get(f"{entry}/certificate.json", base_url=BASE_URL),
        client.post(f"{entry}/test", json=body, base_url=BASE_URL, headers=ORIGIN),
        client.put(entry, json=body, base_url=BASE_URL, headers=ORIGIN),
        client.put(entry, json=body, base_url=BASE_URL, headers=ORIGIN),
    ]
    assert [c.status_code for c in calls] == [200, 200, 200, 201, 403]
    for response in calls:
        assert_documented(app, response)


def test_error_answers_fit_the_document(
    app: Flask, client: FlaskClient, web_vault: WebVault, admin: dict[str, str]
) -> None:
    csrf = sign_in(client, "otto")
    credentials = f"{API}/credentials"
    calls = [
        (401, client.get(f"{API}/status", base_url=BASE_URL, headers=bearer("gwv_unknown"))),
        (404, client.get(f"{credentials}/no-such-db", base_url=BASE_URL, headers=admin)),
        (400, put_credential(client, "sales-db", {"type": "postgresql"}, admin)),
        (415, client.put(f"{credentials}/x", data="{}", base_url=BASE_URL, headers=admin)),
        (413, put_credential(client, "x", {"server": "a" * 70_000}, admin)),
        (
            403,
            put_credential(
                client,
                "sales-db",
                sealed_body(web_vault, "sales-db"),
                {**ORIGIN, "X-CSRF-Token": csrf},
            ),
        ),
    ]
    assert [response.status_code for _status, response in calls] == [s for s, _r in calls]
    for _status, response in calls:
        assert_documented(app, response)


def test_audit_query_parameters_are_the_ones_the_route_takes() -> None:
    parameters = [_deref(p) for p in _operation("/audit", "get")["parameters"]]
    assert {p["name"] for p in parameters if p["in"] == "query"} == set(AUDIT_FILTERS)


def test_audit_answers_fit_the_document(
    app: Flask, client: FlaskClient, web_vault: WebVault, admin: dict[str, str]
) -> None:
    auditor = bearer(new_token(web_vault, "auditor"))
    creator = bearer(new_token(web_vault, "creator"))
    audit = f"{API}/audit"
    calls = [
        client.get(audit, base_url=BASE_URL, headers=auditor),
        client.get(f"{audit}?action=user.*&limit=2", base_url=BASE_URL, headers=admin),
        client.get(f"{API}/audit/verify", base_url=BASE_URL, headers=auditor),
        client.get(f"{audit}?limit=0", base_url=BASE_URL, headers=auditor),
        client.get(audit, base_url=BASE_URL, headers=creator),
        client.get(f"{API}/audit/verify", base_url=BASE_URL, headers=creator),
        client.get(f"{API}/audit/verify", base_url=BASE_URL),
    ]
    assert [c.status_code for c in calls] == [200, 200, 200, 400, 403, 403, 401]
    assert calls[1].get_json()["next_before"] is not None  # a full page: the integer form
    db = sqlite3.connect(web_vault.data_dir / DB_FILE)
    with db:  # an edit past the append-only trigger: the failed verdict's form
        db.execute("DROP TRIGGER audit_events_no_update")
        # The newest entry: the API checks from the last full check's mark on (T-AU-15).
        (newest,) = db.execute("SELECT max(seq) FROM audit_events").fetchone()
        db.execute("UPDATE audit_events SET actor = 'x' WHERE seq = ?", [newest])
    db.close()
    failed = client.get(f"{API}/audit/verify", base_url=BASE_URL, headers=auditor)
    assert (failed.status_code, failed.get_json()["first_bad_seq"]) == (200, newest)
    for response in [*calls, failed]:
        assert_documented(app, response)


def test_probes_are_open_at_the_root_and_say_only_ok_or_not() -> None:
    for path in PROBE_PATHS:
        item = DOCUMENT["paths"][path]
        assert [server["url"] for server in item["servers"]] == ["https://{authority}"]
        operation = item["get"]
        assert operation["security"] == []
        answers = {status: _deref(a)["content"] for status, a in operation["responses"].items()}
        assert answers == {
            "200": {"application/json": {"schema": {"$ref": "#/components/schemas/ProbeOk"}}},
            "503": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ProbeUnavailable"}}
            },
        }


def test_probe_answers_fit_the_document(
    app: Flask, client: FlaskClient, web_vault: WebVault
) -> None:
    calls = [client.get(path, base_url=BASE_URL) for path in PROBE_PATHS]
    db = sqlite3.connect(web_vault.data_dir / DB_FILE)
    with db:  # a schema this gwvault does not know (a newer one): not ready
        db.execute("UPDATE settings SET value = '999' WHERE key = 'schema_version'")
    db.close()
    calls.append(client.get("/readyz", base_url=BASE_URL))
    assert [c.status_code for c in calls] == [200, 200, 503]
    for response in calls:
        assert_documented(app, response)


def test_the_metrics_are_at_the_root_behind_the_scrape_token_alone(
    client: FlaskClient, app: Flask, web_vault: WebVault
) -> None:
    item = DOCUMENT["paths"]["/metrics"]
    assert [server["url"] for server in item["servers"]] == ["https://{authority}"]
    assert item["get"]["security"] == [{"scrapeToken": []}]
    with web_vault.gateway() as gateway:
        token = new_scrape_token(gateway)
    for headers in ({}, bearer(new_token(web_vault, "admin")), bearer(token)):
        assert_documented(app, client.get("/metrics", base_url=BASE_URL, headers=headers))
