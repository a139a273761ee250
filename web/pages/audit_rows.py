"""How one audit entry reads on the page: who acted, in words; what was done;
and the details as key/value pairs rather than a line of JSON.

The page only lays the entry out: the values are the trail's own, unchanged
(the CLI's ``audit list --json`` and the export show the same).  Opaque
identifiers (digests, thumbprints, UUIDs) are marked so the page can set them
in monospace and let them break anywhere; words never break inside.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

# How the trail's actor prefixes read (vault.access.policy.Principal.actor,
# vault.context, vault.agent, web.housekeeping); an unknown prefix shows as is.
_ACTOR_KINDS = {
    "user": "user",
    "token": "token",
    "entry-link": "entry link",
    "os": "OS user",
    "agent": "agent",
    "gwvault": "gwvault",
}
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]{22,}={0,2}")
# Beyond this nesting a value is shown as its JSON text: gwvault writes flat
# details, so deeper ones come only from an edited row (which fails to verify).
_MAX_DEPTH = 3

ValueKind = Literal["text", "identifier", "listing", "none", "pairs", "items"]


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "entry link", ...; "" for a bare name such as "anonymous"
    name: str
    identifier: bool  # an opaque id (an entry link's UUID): monospace


@dataclass(frozen=True)
class DetailValue:
    """One detail's value as the template draws it."""

    kind: ValueKind
    text: str = ""
    pairs: tuple[tuple[str, DetailValue], ...] = field(default=())  # "pairs": a nested object
    # "items": a JSON array; "listing": the parts of a comma-separated text
    items: tuple[DetailValue, ...] = ()


def actor_view(actor: str) -> Actor:
    """``user:ada`` as kind "user" and name "ada"; a name without a kind as itself."""
    kind, colon, name = actor.partition(":")
    if not colon or not name:
        return Actor("", actor, False)
    return Actor(_ACTOR_KINDS.get(kind, kind), name, is_identifier(name))


def is_identifier(text: str) -> bool:
    """A digest, thumbprint or UUID: no word a reader would want kept whole.

    Base64url needs upper case, lower case and a digit, so a long data-source
    name such as ``sales-reporting-eu-west`` is not taken for one.
    """
    if _HEX.fullmatch(text) or _UUID.fullmatch(text):
        return True
    return bool(
        _BASE64URL.fullmatch(text)
        and re.search(r"[a-z]", text)
        and re.search(r"[A-Z]", text)
        and re.search(r"[0-9]", text)
    )


def details_view(details: object) -> DetailValue:
    """The details of ``vault.audit.log.entry_view``: an object, or text that was not JSON."""
    return _value(details, 0)


def _value(value: object, depth: int) -> DetailValue:
    if isinstance(value, dict | list) and depth < _MAX_DEPTH:
        if isinstance(value, dict):
            pairs = tuple((str(key), _value(item, depth + 1)) for key, item in value.items())
            return DetailValue("pairs", pairs=pairs)
        return DetailValue("items", items=tuple(_value(item, depth + 1) for item in value))
    return _scalar(value)


def _scalar(value: object) -> DetailValue:
    if value is None:
        return DetailValue("none", "none")
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict | list):  # nested past _MAX_DEPTH
        return DetailValue("text", json.dumps(value, ensure_ascii=False, sort_keys=True))
    # A bool as JSON spells it (true/false), as the CLI's --json shows it.
    return DetailValue("text", json.dumps(value) if isinstance(value, bool) else str(value))


def _text(value: str) -> DetailValue:
    if is_identifier(value):
        return DetailValue("identifier", value)
    if "," in value and not any(c.isspace() for c in value):
        # "id1,id2,..." (a batch's credential ids) is one word to the browser:
        # it may break after each comma instead, and each part is checked alone.
        return DetailValue("listing", value, items=tuple(_text(part) for part in value.split(",")))
    return DetailValue("text", value)
