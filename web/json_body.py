"""Strict JSON request bodies: the right content type, an object, known members only."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from agent_keys.errors import InvalidInputError
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.data_source import DataSource, parse_data_source_type, tls_mode_for
from web.errors import UnsupportedMediaType


def json_object(allowed: frozenset[str], required: frozenset[str]) -> dict[str, Any]:
    """The request's JSON object; ``InvalidInputError`` for anything else."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        body = json.loads(request.get_data(cache=False, as_text=False) or b"null")
    except (ValueError, RecursionError) as e:
        raise InvalidInputError("the body is not valid JSON") from e
    if not isinstance(body, dict):
        raise InvalidInputError("the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise InvalidInputError(f"unknown members: {', '.join(sorted(unknown))[:200]}")
    missing = required - set(body)
    if missing:
        raise InvalidInputError(f"missing members: {', '.join(sorted(missing))}")
    for key, value in body.items():
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"{key} must be a string")
    return body


SEALED_MEMBERS = frozenset({"type", "server", "database", "tls", "ca_pem", "encrypted_credential"})
SEALED_REQUIRED = frozenset({"type", "server", "encrypted_credential"})


def sealed_credential_body() -> tuple[DataSource, str]:
    """A data source (with its TLS policy) and an EncryptedCredential, as the page
    and API clients send them.  No TLS mode means the type's default (verify-full)."""
    body = json_object(SEALED_MEMBERS, SEALED_REQUIRED)
    source_type = parse_data_source_type(body["type"] or "")
    ca_text = body.get("ca_pem") or None
    source = DataSource(
        type=source_type,
        server=body["server"] or "",
        database=body.get("database") or None,
        tls=tls_mode_for(source_type, body.get("tls") or None),
        ca_pem=canonical_ca_pem(ca_text) if ca_text is not None else None,
    )
    return source, body["encrypted_credential"] or ""
