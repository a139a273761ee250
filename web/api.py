"""The JSON API under /api/v1: the CLI's operations for programs and the page's scripts.

Authentication: a bearer API token, or a browser session (with its CSRF token
on state changes), or an entry-link secret in the URL for the /entry routes.
Secrets go in only as EncryptedCredentials (except /encrypt-value, for API
clients that cannot build a JWE); no route returns one.  /audit and
/audit/verify are ``gwvault audit list`` and ``gwvault audit verify`` for
auditors' programs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from werkzeug.datastructures import MultiDict

from agent_keys.errors import AccessDeniedError, InvalidInputError, NotFoundError
from agent_keys.secret import Secret
from vault.access.grants import AccessGrants
from vault.access.policy import Principal, may
from vault.audit.incremental import verify_since_mark
from vault.audit.log import AuditLog, AuditQuery, entry_view
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.connectors.dispatch import validate_data_source
from vault.credential_due import due_report, parse_within
from vault.credential_pages import (
    DEFAULT_PAGE,
    CredentialPage,
    CredentialPageQuery,
    credential_page,
)
from vault.credentials import CredentialService
from vault.format.audit_chain import AuditEntry
from vault.format.data_source import DataSource, parse_auth_type
from vault.format.encrypted_credential import (
    ALG_ECDH,
    ALG_RSA,
    CredentialPayload,
    SealedTarget,
    seal_credential,
)
from vault.format.life_input import DEFAULT_WITHIN
from vault.health.run_request import request_run
from vault.health.status import health_views
from vault.keys.backup_state import backup_view
from vault.names import check_datasource_name
from web.access import caller, entry_caller, gateway, require, web_caller
from web.connection_test_slots import ConnectionTestSlots
from web.flash import flash
from web.housekeeping import HEALTH_TICK_SECONDS
from web.json_body import TARGET_MEMBERS, json_object, sealed_credential_body, target_of
from web.life_body import life_body, sealed_credential_and_life
from web.query_args import query_arguments

api = Blueprint("api", __name__, url_prefix="/api/v1")
OPENAPI_PATH = Path(__file__).with_name("openapi.json")


@api.get("/openapi.json")
def openapi() -> Response:
    caller()
    return Response(OPENAPI_PATH.read_bytes(), mimetype="application/json")


@api.get("/status")
def status() -> Response:
    require("status.read")
    return jsonify({**gateway().status(), "backup": backup_view(gateway())})


@api.get("/certificate")
def certificate_pem() -> Response:
    require("certificate.read")
    return Response(gateway().certificate().pem, mimetype="application/x-pem-file")


@api.get("/certificate.json")
def certificate_json() -> Response:
    require("certificate.read")
    return jsonify(certificate_facts())


def certificate_facts() -> dict[str, Any]:
    """What a sealer needs: the PEM, its thumbprint, the gateway id, the alg and the key."""
    cert = gateway().certificate()
    return {
        "pem": cert.pem.decode("ascii"),
        "thumbprint": cert.thumbprint,
        "gateway_id": cert.gateway_id,
        "key_type": cert.key_type,
        "alg": ALG_ECDH if cert.key_type == "ec-p256" else ALG_RSA,
        "jwk": cert.public_jwk(),
        "not_after": cert.not_after.isoformat(),
    }


@api.get("/credentials")
def list_credentials() -> Response:
    """One page of credentials by name (the first without a cursor); the pages
    beside it are in the ``Link`` header (RFC 8288), so the body stays the array
    it always was."""
    principal = require("credentials.read")
    query = credential_page_query(request.args)
    page = credential_page(gateway(), query)
    response = jsonify(credential_rows(page, principal))
    links = page_urls("api.list_credentials", page, query)
    if links:
        response.headers["Link"] = ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items())
    return response


CREDENTIAL_PAGING = ("after", "before", "limit", "deleted")


def credential_rows(page: CredentialPage, principal: Principal) -> list[dict[str, Any]]:
    """Each credential's metadata and health: last test, result, next due
    (``vault.health.status``); the driver's words of the last test to admins only."""
    health = health_views(gateway(), page.records, admin=may_test_anywhere(principal))
    return [{**record.metadata(), **health[record.name]} for record in page.records]


def credential_page_query(args: MultiDict[str, str]) -> CredentialPageQuery:
    """The page a query string asks for; ``InvalidInputError`` for anything else."""
    given = query_arguments(args, CREDENTIAL_PAGING)
    return CredentialPageQuery.parse(
        after=given.get("after"),
        before=given.get("before"),
        limit=given.get("limit"),
        deleted=given.get("deleted"),
    )


def page_urls(endpoint: str, page: CredentialPage, query: CredentialPageQuery) -> dict[str, str]:
    """The URLs of the next, previous and (from a later page) first pages, by link
    relation; path-only, so no Host header is reflected."""
    size: dict[str, Any] = {"limit": query.limit} if query.limit != DEFAULT_PAGE else {}
    if query.deleted:  # the pages beside a page of deleted credentials are of them too
        size["deleted"] = "true"
    urls: dict[str, str] = {}
    if page.next_after is not None:
        urls["next"] = url_for(endpoint, after=page.next_after, **size)
    if page.previous_before is not None:
        urls["prev"] = url_for(endpoint, before=page.previous_before, **size)
    if query.after is not None or query.before is not None:
        urls["first"] = url_for(endpoint, **size)
    return urls


@api.get("/credentials/<name>")
def show_credential(name: str) -> Response:
    require("credentials.read")
    return jsonify(CredentialService(gateway()).get(name).metadata())


@api.put("/credentials/<name>")
def put_credential(name: str) -> Response:
    # The early check refuses a caller who may never write this; the service
    # decides again, with the owner, inside the write (vault.access.callers).
    principal = require("credential.write", datasource=name, owner=_owner(name))
    source, token, life = sealed_credential_and_life()
    result = CredentialService(gateway(), web_caller()).put_sealed(name, source, token, life=life)
    response = jsonify(result.record.metadata())
    response.status_code = 201 if result.created else 200
    return flash_saved(response, principal, name, result.record.binding.version)


def flash_saved(response: Response, principal: Principal, name: str, version: int) -> Response:
    """``response``, with the list's one-time "saved" message for a signed-in browser."""
    if principal.kind == "user" and g.get("channel") == "web":
        # The page saves with fetch and then opens the list: the list says what
        # was saved, as after a form post (a flash code and the name, never text).
        flash(response, "credential-saved", f"{name} (version {version})")
    return response


@api.post("/credentials/<name>/test")
def test_credential(name: str) -> Response:
    principal = require("credential.test", datasource=name, owner=_owner(name))
    service = CredentialService(gateway(), web_caller())
    unrestricted = may_test_anywhere(principal)
    # A body (sized or chunked) is an unsaved credential from the form; it is
    # read before a test slot is taken, so a slow upload holds none.
    sealed = sealed_credential_body() if request.get_data(cache=True) else None
    with test_slot(principal):
        if sealed is not None:
            source, token = sealed
            result = service.test_sealed(name, source, token, any_destination=unrestricted)
        else:
            result = service.test(name, any_destination=unrestricted)
    return jsonify(result_view(result, unrestricted))


def test_slot(principal: Principal) -> AbstractContextManager[None]:
    """A slot for one connection test of ``principal`` (``web.connection_test_slots``);
    ``TooManyConnectionTests`` (429) at once when none is free."""
    slots: ConnectionTestSlots = current_app.config["GWVAULT_CONNECTION_TESTS"]
    return slots.held(principal)


# pytest would collect an imported ``test_*`` function as a test; it is not one.
test_slot.__test__ = False  # type: ignore[attr-defined]


def may_test_anywhere(principal: Principal) -> bool:
    """Whether the caller's tests skip the destination policy and show the server's words."""
    return may(principal, "tests.unrestricted")


def result_view(result: ConnectionTestResult, unrestricted: bool) -> dict[str, Any]:
    """A test result as the caller may see it: the reason code and its fixed
    sentence; the driver's detail (the far end's words) only for admins (T-CN-3)."""
    view: dict[str, Any] = {"ok": result.ok, "reason": result.reason, "message": result.summary}
    if result.server_expires_at is not None:  # what the server said of the login itself
        view["server_expires_at"] = result.server_expires_at
    if unrestricted:
        view["detail"] = result.detail
    return view


@api.patch("/credentials/<name>/life")
def change_credential_life(name: str) -> Response:
    """The owner's dates (expiry, rotation period, contact), without the secret."""
    principal = require("credential.manage", datasource=name, owner=_owner(name))
    change = life_body()
    record = CredentialService(gateway(), web_caller()).change_life(name, change)
    return flash_saved(jsonify(record.metadata()), principal, name, record.binding.version)


@api.get("/due")
def due_credentials() -> Response:
    """What is due within ``within`` (default 30d) or overdue, soonest first.

    Not /credentials/due: that is the address of a credential named "due"."""
    require("credentials.read")
    given = query_arguments(request.args, ("within",))
    within = parse_within(given.get("within", DEFAULT_WITHIN))
    return jsonify(due_report(gateway(), within))


@api.delete("/credentials/<name>")
def delete_credential(name: str) -> Response:
    """Delete softly (204, as before soft deletes): restorable until purge_after."""
    # managing() refuses parameters: a client sending ?purge=true is told, not
    # deleted softly.
    managing(name).delete(name)
    return Response(status=204)


@api.post("/credentials/<name>/restore")
def restore_credential(name: str) -> Response:
    return jsonify(managing(name).restore(name).metadata())


@api.post("/credentials/<name>/disable")
def disable_credential(name: str) -> Response:
    return jsonify(managing(name).disable(name).metadata())


@api.post("/credentials/<name>/enable")
def enable_credential(name: str) -> Response:
    return jsonify(managing(name).enable(name).metadata())


def managing(name: str) -> CredentialService:
    """The caller's service for changing the life of ``name``, if the policy may
    let it (this early check spares work; the service decides again, with the
    owner, inside its write)."""
    require("credential.manage", datasource=name, owner=_owner(name))
    query_arguments(request.args, ())  # none is taken: an unknown one is a 400, not ignored
    return CredentialService(gateway(), web_caller())


@api.post("/credentials/<name>/purge")
def purge_credential(name: str) -> Response:
    """Destroy a deleted credential now (admins): a verb of its own, not a flag on
    DELETE that a client or proxy could drop and so delete softly instead."""
    require("credential.purge")
    query_arguments(request.args, ())
    CredentialService(gateway(), web_caller()).purge(name)
    return Response(status=204)


@api.post("/test-all")
def test_all_credentials() -> Response:
    """Have every enabled credential tested at the scheduler's next tick (admins):
    202, not the results; a run over many credentials outlasts a request."""
    require("credentials.test-all")
    query_arguments(request.args, ())
    requested_at = request_run(gateway(), web_caller())
    response = jsonify({"requested_at": requested_at, "within_seconds": int(HEALTH_TICK_SECONDS)})
    response.status_code = 202
    return response


@api.post("/encrypt-value")
def encrypt_value() -> Response:
    principal = require("encrypt")
    if principal.kind != "token":
        # The page seals in the browser; only programs send a secret here.
        raise AccessDeniedError("encrypt-value takes an API token; the page seals in the browser")
    body = json_object(
        frozenset({"datasource", "auth", "username", "secret"}) | TARGET_MEMBERS,
        frozenset({"datasource", "type", "server"}),
    )
    payload = CredentialPayload(
        auth=parse_auth_type(body.get("auth") or "basic"),
        username=body.get("username"),
        secret=_secret_of(body.get("secret")),
    )
    target = target_of(body)
    validate_data_source(
        target, ConnectionCredential(payload.auth, payload.username, payload.secret)
    )
    context = gateway().context
    token = seal_credential(
        gateway().certificate(),
        check_datasource_name(body["datasource"] or ""),
        SealedTarget.of(target),
        payload,
        issued_at=int(context.clock().timestamp()),
        random=context.random,
    )
    return jsonify({"encrypted_credential": token})


@api.get("/entry/<secret>")
def entry_link(secret: str) -> Response:
    link = entry_caller(secret)
    return jsonify(
        {
            "datasource": link.datasource,
            "expires_at": link.expires_at.isoformat(),
            "target": target_json(link.target),
        }
    )


def target_json(target: DataSource) -> dict[str, object]:
    """A data source as the JSON body members that name it."""
    return {
        "type": target.type,
        "server": target.server,
        "database": target.database,
        "tls": target.tls,
        "ca_pem": target.ca_pem,
    }


@api.get("/entry/<secret>/certificate.json")
def entry_certificate(secret: str) -> Response:
    entry_caller(secret)
    return jsonify(certificate_facts())


@api.post("/entry/<secret>/test")
def entry_test(secret: str) -> Response:
    link = entry_caller(secret)
    source, token = sealed_credential_body()
    # An entry link is never an admin: the destination policy, no far-end words.
    service = CredentialService(gateway(), web_caller())
    with test_slot(link.principal()):
        result = service.test_sealed(link.datasource, source, token)
    return jsonify(result_view(result, unrestricted=False))


@api.put("/entry/<secret>")
def entry_put(secret: str) -> Response:
    link = entry_caller(secret)
    source, token = sealed_credential_body()
    grants = AccessGrants(gateway())
    result = CredentialService(gateway(), web_caller()).put_sealed(
        link.datasource, source, token, also=lambda: grants.consume_entry_link(link)
    )
    response = jsonify(result.record.metadata())
    response.status_code = 201 if result.created else 200
    return response


# Query parameter -> the AuditQuery.parse argument it fills.
AUDIT_FILTERS = {
    "credential": "credential",
    "action": "action",
    "since": "since",
    "before": "before_seq",
    "after": "after_seq",
    "limit": "limit",
}


@api.get("/audit")
def audit_events() -> Response:
    require("audit.read")
    query = audit_query(request.args)
    found = AuditLog(gateway()).find(query)
    return jsonify(
        {"events": [entry_view(entry) for entry in found], "next_before": next_before(found, query)}
    )


@api.get("/audit/verify")
def audit_verify() -> Response:
    principal = require("audit.read")
    # The entries after the last full check's mark (vault.audit.incremental).
    report = verify_since_mark(gateway(), f"api:{principal.actor}")
    # 200 either way: a trail that fails to verify is the answer asked for, not
    # a failed request (the CLI exits 1 for the benefit of scripts; HTTP has the body).
    return jsonify({**report.to_dict(), "summary": report.summary()})


def audit_query(args: MultiDict[str, str], *, blank_is_unset: bool = False) -> AuditQuery:
    """The audit filter of a query string, checked as ``gwvault audit list`` checks its
    options (``web.query_args``: unknown, repeated or empty parameters are refused)."""
    values = query_arguments(args, AUDIT_FILTERS, blank_is_unset=blank_is_unset)
    given = {AUDIT_FILTERS[name]: value for name, value in values.items()}
    return AuditQuery.parse(
        credential=given.get("credential"),
        action=given.get("action"),
        since=given.get("since"),
        before_seq=given.get("before_seq"),
        after_seq=given.get("after_seq"),
        limit=given.get("limit"),
    )


def next_before(found: list[AuditEntry], query: AuditQuery) -> int | None:
    """The ``before`` of the next (older) page; None when this page was not full
    (a page asked with ``after`` always has older entries: the one it names).

    A full page may be followed by an empty one: telling the two apart would
    cost a second query on every call.
    """
    if not found or (len(found) < query.limit and query.after_seq is None):
        return None
    return found[-1].seq


def newer_after(found: list[AuditEntry], query: AuditQuery) -> int | None:
    """The ``after`` of the previous (newer) page; None on the newest page (no
    cursor, or an ``after`` page that was not full)."""
    full_after_page = query.after_seq is not None and len(found) == query.limit
    if not found or not (query.before_seq is not None or full_after_page):
        return None
    return found[0].seq


def _secret_of(value: str | None) -> Secret | None:
    if value is None:
        return None
    try:
        return Secret.from_text(value)
    except UnicodeEncodeError as e:  # a lone surrogate such as "\ud800" is not text
        raise InvalidInputError("the secret is not valid Unicode text") from e


def _owner(name: str) -> str | None:
    try:
        return CredentialService(gateway()).get(name).owner
    except NotFoundError:
        return None
