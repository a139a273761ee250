"""Strict encoding of the JOSE building blocks: base64url and JSON.

Strict means one encoding per value: unpadded base64url with no stray
characters and zero trailing bits.  Any violation raises ``ValueError``;
callers turn that into their one error type.  JSON objects are read with
``vault.format.strict_json`` (no duplicate members, as RFC 7515 section 5.2
asks, and no lone surrogates), like all JSON from outside.
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


def compact_json(value: dict[str, Any]) -> bytes:
    """The one serialisation we emit: no spaces, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
