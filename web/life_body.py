"""The owner's dates in a JSON body: ``expires_at``, ``rotate_every``, ``contact``.

Each member is a string as ``vault.format.life_input`` reads it (``none``
clears, as null does); a member left out keeps the stored value.  PUT
/credentials/<name> takes them beside the sealed credential, PATCH
/credentials/<name>/life alone.  ``rotate_every`` is typed as a duration
(``90d``), though a credential's metadata gives it in seconds: a period
in seconds is what nobody types.
"""

from __future__ import annotations

from typing import Any

from agent_keys.errors import InvalidInputError
from vault.credential_life import KEEP, LifeChange, life_change_of
from vault.format.data_source import DataSource
from web.json_body import CONNECTION_STRING, SEALED_MEMBERS, json_object, sealed_parts

LIFE_MEMBERS = frozenset({"expires_at", "rotate_every", "contact"})


def sealed_credential_and_life() -> tuple[DataSource, str, LifeChange]:
    """A PUT's data source, EncryptedCredential and owner's dates."""
    # sealed_parts checks what is required: the sealed members, or a connection string.
    body = json_object(SEALED_MEMBERS | LIFE_MEMBERS | {CONNECTION_STRING}, frozenset())
    source, token = sealed_parts(body)
    return source, token, _life_change(body)


def life_body() -> LifeChange:
    """A PATCH's owner's dates: at least one member."""
    body = json_object(LIFE_MEMBERS, frozenset())
    if not body:
        raise InvalidInputError("send expires_at, rotate_every or contact (null clears one)")
    return _life_change(body)


def _life_change(body: dict[str, Any]) -> LifeChange:
    return life_change_of(**{name: body.get(name, KEEP) for name in LIFE_MEMBERS})
