"""Strict JSON request bodies: the right content type, an object, known members only.

The body is read by ``vault.format.strict_json``: a repeated member (which
``json.loads`` would settle by keeping the last) and a lone surrogate (which
no later step could encode) are refused with the rest (T-WEB-9).
"""

from __future__ import annotations

from typing import Any

from flask import request

from agent_keys.errors import InvalidInputError
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.connection_string import SEAL_HINT, parse_connection_string
from vault.format.data_source import DataSource, parse_data_source_type, tls_mode_for
from vault.format.strict_json import parse_json_object
from web.errors import UnsupportedMediaType


def json_object(allowed: frozenset[str], required: frozenset[str]) -> dict[str, Any]:
    """The request's JSON object; ``InvalidInputError`` for anything else."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        body = parse_json_object(request.get_data(cache=False, as_text=False))
    except ValueError as e:
        raise InvalidInputError(
            "the body must be one JSON object in UTF-8, each member once, with no lone surrogate"
        ) from e
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
TARGET_MEMBERS = frozenset({"type", "server", "database", "tls", "ca_pem"})
# The alternative to type, server, database and encrypted_credential (``string_body``).
CONNECTION_STRING = "connection_string"


def sealed_credential_body() -> tuple[DataSource, str]:
    """A data source (with its TLS policy) and an EncryptedCredential, as the page
    and API clients send them (or as one ``connection_string``, ``string_body``).
    No TLS mode means the type's default (verify-full)."""
    return sealed_parts(json_object(SEALED_MEMBERS | {CONNECTION_STRING}, frozenset()))


def sealed_parts(body: dict[str, Any]) -> tuple[DataSource, str]:
    """The data source and EncryptedCredential of a body read with ``SEALED_MEMBERS``
    and ``CONNECTION_STRING`` (whose required members it checks)."""
    if CONNECTION_STRING in body:
        return string_body(body)
    missing = SEALED_REQUIRED - set(body)
    if missing:
        raise InvalidInputError(f"missing members: {', '.join(sorted(missing))}")
    if not body["encrypted_credential"]:
        # Said plainly: the stored secret is never re-sealed for a changed target.
        raise InvalidInputError(NO_SEAL)
    return target_of(body), body["encrypted_credential"]


NO_SEAL = (
    "encrypted_credential is empty: a credential is stored only with its secret sealed"
    " for its type, server, database and TLS policy, so a change of any of them, of the"
    " user name or of the auth type needs the secret again (the page, or gwvault encrypt-value)"
)


def string_body(body: dict[str, Any]) -> tuple[DataSource, str]:
    """The target and EncryptedCredential of a ``connection_string`` member
    (``vault.format.connection_string``); ``tls`` may strengthen its TLS mode and
    ``ca_pem`` gives the CA a verifying mode trusts.  A password in clear is
    refused and never echoed."""
    named = sorted(set(body) & {"type", "server", "database", "encrypted_credential"})
    if named:
        raise InvalidInputError(
            f"connection_string names the target and carries the sealed credential; drop"
            f" {', '.join(named)}"
        )
    parsed = parse_connection_string(body["connection_string"] or "")
    ca_text = body.get("ca_pem") or None
    source = parsed.data_source(
        tls=body.get("tls") or None,
        ca_pem=canonical_ca_pem(ca_text) if ca_text is not None else None,
    )
    if not parsed.sealed:
        raise InvalidInputError(f"connection_string has no EncryptedCredential; {SEAL_HINT}")
    return source, parsed.sealed


def target_of(body: dict[str, Any]) -> DataSource:
    """The data source a body's ``type server database tls ca_pem`` name (the CA
    made canonical, the TLS mode the type's default when none is given)."""
    source_type = parse_data_source_type(body["type"] or "")
    ca_text = body.get("ca_pem") or None
    return DataSource(
        type=source_type,
        server=body["server"] or "",
        database=body.get("database") or None,
        tls=tls_mode_for(source_type, body.get("tls") or None),
        ca_pem=canonical_ca_pem(ca_text) if ca_text is not None else None,
    )
