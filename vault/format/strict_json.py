"""The one strict JSON reader for everything that comes from outside.

Request bodies, EncryptedCredential headers and payloads, recovery bundle
headers, audit export lines, and JSON read back from the vault database all go
through ``parse_json_object``.  It refuses what ``json.loads`` lets through:

- a repeated member name, at any depth (RFC 8259 section 4 leaves the result to
  the parser, and ``json.loads`` keeps the last one, so two readers of one body
  may disagree; RFC 7515 section 5.2 has JOSE recipients reject it);
- ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON;
- a ``\\uD800``-style escape that leaves a lone surrogate: it is no Unicode
  scalar value (RFC 8259 section 8.2), cannot be encoded as UTF-8, and used to
  surface as a 500 wherever the text was encoded later (issue 14 item 11).

Any violation raises ``ValueError``; each caller turns it into its one error.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    """Parse UTF-8 bytes (or text) holding one JSON object, strictly; else ``ValueError``."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except (UnicodeDecodeError, RecursionError) as e:
        raise ValueError("not a JSON object") from e
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a JSON object repeats a member name")
    for key, value in pairs:
        _check_text(key)
        _check_value(value)
    return result


def _check_value(value: Any) -> None:
    # Objects were checked when they were built; strings in arrays are not seen
    # by the object hook, so arrays are walked here (each once, by its parent).
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, list):
        for item in value:
            _check_value(item)


def _check_text(text: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise ValueError("JSON text holds a lone surrogate")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder, made once: json.loads with hooks builds a new one per call, which
# is a measurable share of opening an EncryptedCredential (two objects each).
_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_refuse_constant)
