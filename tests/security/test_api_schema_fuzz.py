"""Schemathesis against the running HTTPS endpoint: every operation of web/openapi.json.

Each operation gets ``scaled(15, 200)`` generated requests in each generation
mode (valid and invalid inputs), sent by an admin API token to the real server
(TLS, web/server) of the ``live_server`` fixture.  Every answer must be no 5xx,
have a documented status, a documented content type, a body and headers that
fit the document's schema, and an operation that declares authentication
must refuse the same request without (or with a made-up) token.

Failures are collected across all operations rather than stopping at the
first, so one run reports them all; the test fails if there is any.
``test_the_checks_catch_a_wrong_document`` proves the same harness fails when
the document and the server disagree.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.scale import scaled
from tests.web.api_helpers import API, bearer, new_entry_link, new_token, sealed_body
from tests.web_fixtures import LiveServer
from vault.keys.tls import TlsService
from web.api import OPENAPI_PATH

EXAMPLES = scaled(15, 200)  # per operation and generation mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
REQUEST_TIMEOUT = 30.0
SEEDED_CREDENTIAL = "fuzz-seeded"
ENTRY_DATASOURCE = "fuzz-entry"


@dataclass
class FuzzReport:
    """What a run sent and every distinct failure it met (one example each)."""

    cases: int = 0
    per_operation: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    failure_count: int = 0
    unsatisfiable: list[str] = field(default_factory=list)

    def record(self, label: str, problems: list[tuple[str, str]], detail: str) -> None:
        """One failed case: its (kind, title) problems, and what to show for it."""
        self.failure_count += 1
        for kind, title in problems:
            self.failures.setdefault((label, kind, title), detail)

    def summary(self) -> str:
        return f"SECURITY-SUMMARY schemathesis cases={self.cases} failures={self.failure_count}"

    def details(self) -> str:
        return "\n\n".join(
            f"--- {label}: {kind} ({title})\n{detail}"
            for (label, kind, title), detail in sorted(self.failures.items())
        )


@dataclass(frozen=True)
class Target:
    """Where and as whom to send: the API's base URL, TLS trust and headers."""

    base_url: str
    verify: str | bool
    headers: dict[str, str]
    # A live value for a path parameter (and a valid body for it), fresh per
    # operation, so some cases get past the 404/403 of unknown names.
    known: Callable[[str], Known | None] = lambda _name: None
    # The endpoint's root, for operations whose path item names a server of its
    # own (the probes, /healthz and /readyz, sit at the root, not under the API).
    root_url: str = ""


@dataclass(frozen=True)
class Known:
    value: str
    body: dict[str, str]  # a valid sealed-credential body for that data source


def _paths_at_the_root() -> frozenset[str]:
    """Paths whose item names its own server (the endpoint's root, not the API's)."""
    document = json.loads(OPENAPI_PATH.read_text())
    return frozenset(path for path, item in document["paths"].items() if "servers" in item)


AT_THE_ROOT = _paths_at_the_root()


def load_schema(document: dict[str, Any] | None = None) -> Any:
    """The OpenAPI document as schemathesis sees it (no config discovery from the cwd)."""
    config = schemathesis.Config()
    if document is None:
        return schemathesis.openapi.from_path(OPENAPI_PATH, config=config)
    return schemathesis.openapi.from_dict(document, config=config)


def strategy_for(operation: Any, mode: GenerationMode, target: Target) -> st.SearchStrategy[Any]:
    """Generated cases; valid ones also with a live name or secret, and a valid body."""
    generated: st.SearchStrategy[Any] = operation.as_strategy(generation_mode=mode)
    parameters = [p.name for p in operation.path_parameters]
    known = target.known(parameters[0]) if mode is GenerationMode.POSITIVE and parameters else None
    if known is None:
        return generated
    path = {parameters[0]: known.value}
    options = [generated, operation.as_strategy(generation_mode=mode, path_parameters=path)]
    if operation.body:
        options.append(
            operation.as_strategy(
                generation_mode=mode,
                path_parameters=path,
                body=known.body,
                media_type="application/json",
            )
        )
    return st.one_of(options)


def fuzz(schema: Any, target: Target, examples: int, *, only: set[str] | None = None) -> FuzzReport:
    """Send up to ``examples`` cases per operation and mode; collect every failure."""
    report = FuzzReport()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), f"schemathesis cannot read an operation: {result.err()}"
            operation = result.ok()
            if only is not None and operation.label not in only:
                continue
            report.per_operation[operation.label] = 0
            report.statuses[operation.label] = Counter()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    run_operation(
                        strategy_for(operation, mode, target),
                        examples,
                        lambda case: send(case, target, session, report),
                    )
                except Unsatisfiable:
                    # An operation with no input to get wrong has no negative cases.
                    report.unsatisfiable.append(f"{operation.label} ({mode.value})")
    return report


def run_operation(
    strategy: st.SearchStrategy[Any], examples: int, check: Callable[[Any], None]
) -> None:
    # Generation only: the check collects failures itself (nothing to shrink or
    # replay), and no example database (cases depend on this run's vault).
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def property_(case: Any) -> None:
        check(case)

    property_()


def send(case: Any, target: Target, session: requests.Session, report: FuzzReport) -> None:
    label: str = case.operation.label
    report.cases += 1
    report.per_operation[label] += 1
    base_url = target.root_url if case.operation.path in AT_THE_ROOT else target.base_url
    try:
        response = case.call(
            base_url=base_url,
            session=session,
            headers=target.headers,
            verify=target.verify,
            timeout=REQUEST_TIMEOUT,
        )
        report.statuses[label][response.status_code] += 1
        case.validate_response(
            response,
            checks=CHECKS,
            headers=target.headers,
            transport_kwargs={
                "base_url": base_url,
                "session": session,
                "headers": target.headers,
                "verify": target.verify,
                "timeout": REQUEST_TIMEOUT,
            },
        )
    except FailureGroup as group:
        report.record(label, [_kind(f) for f in group.exceptions], str(group))
    except Failure as failure:
        report.record(label, [_kind(failure)], str(failure))
    except requests.RequestException as error:
        # A dropped connection or a timeout is a failure of the server too.
        report.record(label, [(type(error).__name__, "transport")], f"{error}\n{case!r}")


def _kind(failure: Failure) -> tuple[str, str]:
    return type(failure).__name__, failure.title


def seeded_target(live_server: LiveServer, tmp_path: Path) -> Target:
    """The live server's API, its own certificate as the only trust anchor, an admin token.

    Names that exist: a stored credential (restored, enabled and stored again
    before each operation, as DELETE, purge or disable may have changed it) and
    a new entry link for each operation.
    """
    vault = live_server.web_vault
    with vault.gateway() as gateway:
        ca_file = tmp_path / "endpoint.pem"
        ca_file.write_bytes(TlsService(gateway).server_identity().chain_pem)
    headers = bearer(new_token(vault, "admin"))
    base_url = live_server.url + API

    def known(parameter: str) -> Known | None:
        if parameter == "secret":
            return Known(
                new_entry_link(vault, ENTRY_DATASOURCE), sealed_body(vault, ENTRY_DATASOURCE)
            )
        if parameter != "name":
            return None
        body = sealed_body(vault, SEEDED_CREDENTIAL)
        # DELETE (soft) or disable may have left it so: bring it back first (a
        # 404 or 409 here means there was nothing to bring back).
        for undo in ("restore", "enable"):
            requests.post(
                f"{base_url}/credentials/{SEEDED_CREDENTIAL}/{undo}",
                headers=headers,
                verify=str(ca_file),
                timeout=REQUEST_TIMEOUT,
            )
        stored = requests.put(
            f"{base_url}/credentials/{SEEDED_CREDENTIAL}",
            json=body,
            headers=headers,
            verify=str(ca_file),
            timeout=REQUEST_TIMEOUT,
        )
        assert stored.status_code in {200, 201}, stored.text
        return Known(SEEDED_CREDENTIAL, body)

    return Target(base_url, str(ca_file), headers, known, root_url=live_server.url)


@pytest.mark.timeout(scaled(300, 3600))
def test_every_operation_conforms_under_fuzzing(
    live_server: LiveServer, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    schema = load_schema()
    report = fuzz(schema, seeded_target(live_server, tmp_path), EXAMPLES)
    print(report.summary())
    for label, statuses in report.statuses.items():
        print(f"  {label}: {report.per_operation[label]} cases, statuses {dict(statuses)}")
    print("no invalid input to generate for:", ", ".join(report.unsatisfiable) or "-")
    record_property("cases", report.cases)
    record_property("failures", report.failure_count)
    record_property("operations", len(report.per_operation))
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    documented = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    )
    assert len(report.per_operation) == documented, "an operation of the document was skipped"
    starved = [label for label, count in report.per_operation.items() if count == 0]
    assert not starved, f"no case was generated for {starved}"
    assert report.failure_count == 0, f"{report.summary()}\n\n{report.details()}"


def test_the_checks_catch_a_wrong_document(live_server: LiveServer, tmp_path: Path) -> None:
    """The harness fails when the document lies: a missing member, status and content type."""
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    wrong = copy.deepcopy(document)
    status_ok = wrong["paths"]["/status"]["get"]["responses"]["200"]
    status_ok.clear()
    status_ok.update(
        {
            "description": "claims a member the server never sends",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "required": ["no_such_member"]},
                }
            },
        }
    )
    certificate = wrong["paths"]["/certificate"]["get"]["responses"]
    certificate["200"] = {
        "description": "claims JSON where the server sends PEM",
        "content": {"application/json": {"schema": {}}},
    }
    del wrong["paths"]["/certificate.json"]["get"]["responses"]["200"]
    only = {"GET /status", "GET /certificate", "GET /certificate.json"}
    report = fuzz(load_schema(wrong), seeded_target(live_server, tmp_path), 3, only=only)
    kinds = {(label, kind) for label, kind, _title in report.failures}
    assert ("GET /status", "JsonSchemaError") in kinds, report.details()
    assert ("GET /certificate", "UndefinedContentType") in kinds, report.details()
    assert ("GET /certificate.json", "UndefinedStatusCode") in kinds, report.details()
