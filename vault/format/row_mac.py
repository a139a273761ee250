"""The MAC that seals a security-relevant database row: who may do what, and where.

Rows that decide access (users' roles and password hashes, API tokens, entry
links, web sessions, a credential's owner and version, the endpoint and policy
settings, the gateway certificates) carry an HMAC-SHA256 over their fields,
so someone who can write the database file but holds no key cannot add an
admin token, promote a user or swap the certificate sealers are handed
(the trust review, item 4; threat T-DB-1).

    row key = HMAC-SHA256(audit key, "gwvault-row-key/v1")
    row MAC = HMAC-SHA256(row key, "gwvault-row/v1" 0x00 || field(gateway id)
              || field(table) || for each column in sorted order:
              field(column name) || value(column))

where ``field(s)`` is u32be(len) || UTF-8 bytes, and a value is 0x00 for NULL,
0x01 || u64be(n + 2^63) for an integer, 0x02 || field for text, and
0x03 || u32be(len) || bytes for a blob.  The row key is derived from the audit
key (random, wrapped by the GMK), so it lives and rotates with it.

Pure: bytes in, bytes out; no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping

from agent_keys.secret import Secret

RowValue = str | int | bytes | None

_KEY_LABEL = b"gwvault-row-key/v1"
_DOMAIN = b"gwvault-row/v1\x00"


def row_key(audit_key: Secret) -> Secret:
    """The key that MACs rows, derived from the vault's audit key."""
    return Secret(hmac.new(audit_key.reveal(), _KEY_LABEL, hashlib.sha256).digest())


def row_mac(key: Secret, gateway_id: str, table: str, row: Mapping[str, RowValue]) -> bytes:
    """The MAC of ``row`` (column -> value) in ``table`` of the vault ``gateway_id``."""
    message = bytearray(_DOMAIN)
    message += _text(gateway_id) + _text(table)
    for column in sorted(row):
        message += _text(column) + _value(row[column])
    return hmac.new(key.reveal(), bytes(message), hashlib.sha256).digest()


def row_mac_ok(
    key: Secret, gateway_id: str, table: str, row: Mapping[str, RowValue], mac: bytes | None
) -> bool:
    """Whether ``mac`` is the MAC of ``row`` (constant time; a missing MAC is not)."""
    return mac is not None and hmac.compare_digest(row_mac(key, gateway_id, table, row), mac)


def _text(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def _value(value: RowValue) -> bytes:
    if value is None:
        return b"\x00"
    if isinstance(value, bool):  # a bool is an int in Python; the database has no bools
        raise TypeError("a row value is text, an integer, bytes or NULL")
    if isinstance(value, int):
        return b"\x01" + struct.pack(">Q", value + 2**63)
    if isinstance(value, str):
        return b"\x02" + _text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        blob = bytes(value)
        return b"\x03" + struct.pack(">I", len(blob)) + blob
    raise TypeError("a row value is text, an integer, bytes or NULL")
