"""Strict decoding of the JOSE building blocks: base64url and JSON objects.

Strict means one encoding per value: unpadded base64url with no stray
characters and zero trailing bits, and JSON objects with no duplicate members
(RFC 7515 section 5.2 tells recipients to reject those).  Any violation raises
``ValueError``; callers turn that into their one error type.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_decode(text: str, max_bytes: int) -> bytes:
    """Decode canonical unpadded base64url of at most ``max_bytes`` bytes."""
    if len(text) > (max_bytes * 4 + 2) // 3 or not _B64URL.fullmatch(text):
        raise ValueError("not canonical base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as e:
        raise ValueError("not canonical base64url") from e
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise ValueError("not canonical base64url")
    return raw


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse a UTF-8 JSON object, refusing duplicate members and non-finite numbers."""
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError("not a JSON object") from e
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def compact_json(value: dict[str, Any]) -> bytes:
    """The one serialisation we emit: no spaces, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate JSON member")
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder, made once: json.loads with hooks builds a new one per call, which
# is a measurable share of opening an EncryptedCredential (two objects each).
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
