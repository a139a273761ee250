"""The one place gwvault errors become HTTP statuses and error bodies.

API errors are ``{"error": {"code": ..., "message": ...}}``; page errors render
the error page.  Messages are the VaultError's own (written for people, never
holding a secret); anything unexpected is a 500 with a request id and no
detail, and is logged by type only.
"""

from __future__ import annotations

import logging

from flask import Response, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from agent_keys.errors import (
    AccessDeniedError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeyBackendError,
    NotFoundError,
    StorageError,
    VaultError,
)
from vault.access.row_seal import TamperedRowError
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.cluster.member_keys import MemberStoppedError
from vault.credential_life import CredentialUnavailableError

log = logging.getLogger("gwvault.web")


class Unauthenticated(VaultError):
    """No valid session, token or entry link came with the request."""


class UnsupportedMediaType(InvalidInputError):
    """The body is not application/json."""


class TooManyConnectionTests(VaultError):
    """Refused at once: the caller, entry link or process runs as many tests as allowed."""


# Seconds a refused connection test is asked to wait: tests end within their
# deadline (10 s), most much sooner.
RETRY_AFTER_SECONDS = 5


# Most specific first: the first match wins.
STATUS: dict[type[VaultError], tuple[int, str]] = {
    UnsupportedMediaType: (415, "unsupported_media_type"),
    TooManyConnectionTests: (429, "too_many_tests"),
    # A sealed row written outside gwvault: the vault refuses its own data, so
    # the request conflicts with what is stored (recorded as integrity.row-refused).
    TamperedRowError: (409, "tampered_row"),
    InvalidInputError: (400, "invalid_input"),
    IntegrityError: (400, "invalid_input"),
    AccessDeniedError: (403, "forbidden"),
    NotFoundError: (404, "not_found"),
    # Disabled or deleted: a state the caller can change (enable, restore), so
    # its own code, not a generic conflict.
    CredentialUnavailableError: (409, "credential_unavailable"),
    ConflictError: (409, "conflict"),
    MemberStoppedError: (503, "member_stopped"),
    AuditSinkUnavailableError: (503, "audit_sink_unavailable"),
    KeyBackendError: (503, "key_backend_unavailable"),
    StorageError: (503, "storage_unavailable"),
}


def status_for(error: VaultError) -> tuple[int, str]:
    if isinstance(error, Unauthenticated):
        return 401, "unauthenticated"
    for kind, answer in STATUS.items():
        if isinstance(error, kind):
            return answer
    return 500, "internal_error"


def error_response(status: int, code: str, message: str) -> Response:
    if request.path.startswith("/api/"):
        response = jsonify({"error": {"code": code, "message": message}})
    else:
        response = Response(render_template("error.html", status=status, message=message))
    response.status_code = status
    if status == 401 and request.path.startswith("/api/"):
        response.headers["WWW-Authenticate"] = 'Bearer realm="gwvault"'
    if status == 429:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def handle_vault_error(error: VaultError) -> Response:
    status, code = status_for(error)
    if status >= 500:
        # Storage and key-backend messages name files, tokens and modules on the
        # gateway: useful in its log, not to a caller on the network.
        log.error("request %s: %s", g.get("request_id", "-"), error)
        message = f"the vault is unavailable right now; request id {g.get('request_id', '-')}"
        if isinstance(error, AuditSinkUnavailableError):
            # Fail closed, and say so: the change was refused, not lost.
            message = (
                "an audit sink cannot record this change, so nothing was changed; request id"
                f" {g.get('request_id', '-')}"
            )
        return error_response(status, code, message)
    return error_response(status, code, str(error))


def handle_http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 413:
        # Werkzeug's words ("exceeds the capacity limit") name no limit; these are
        # the endpoint's (web.server.connection refuses a declared length alike).
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return error_response(status, "body_too_large", f"the body is over {limit} bytes")
    return error_response(
        status, (error.name or "error").lower().replace(" ", "_"), error.description or ""
    )


def handle_unexpected(error: Exception) -> Response:
    # Type only: an unexpected exception's text might carry request data.
    log.error("unexpected %s in request %s", type(error).__name__, g.get("request_id", "-"))
    return error_response(
        500, "internal_error", f"internal error; request id {g.get('request_id', '-')}"
    )
