"""An audit entry, checkpoint or rotation record as one JSON object, and its strict reader.

The same objects are the lines of an export (``vault.audit.export``,
``docs/audit-format.md``) and the records an audit sink receives
(``vault.audit.sinks``), so one reader checks both: exactly the keys of the
type, each of its JSON type, digests in lowercase hex, signatures base64url.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from agent_keys.gateway_identity import MAX_SIGNATURE_BYTES, b64url
from vault.format.audit_chain import DIGEST_BYTES, AuditEntry, Checkpoint, Rotation

_MAX_SEQ = 2**63 - 1
_HEX_DIGEST = re.compile(rf"[0-9a-f]{{{2 * DIGEST_BYTES}}}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ENTRY_TEXT = ("at", "actor", "channel", "action", "outcome", "request_id", "details")
_ENTRY_KEYS = frozenset({"type", "seq", "target", "prev", "hash", *_ENTRY_TEXT})
_CHECKPOINT_KEYS = frozenset({"type", "seq", "head", "at", "reason", "thumbprint", "signature"})
_ROTATION_KEYS = frozenset(
    {"type", "seq", "head", "at", "from", "to", "from_signature", "to_signature"}
)

AuditItem = AuditEntry | Checkpoint | Rotation


def entry_record(entry: AuditEntry) -> dict[str, Any]:
    """An entry as its line's JSON object (without its MAC, which only the vault checks)."""
    return {
        "type": "entry",
        **{key: getattr(entry, key) for key in ("seq", "target", *_ENTRY_TEXT)},
        "prev": entry.prev_hash.hex(),
        "hash": entry.hash.hex(),
    }


def statement_record(statement: Checkpoint | Rotation) -> dict[str, Any]:
    """A signed checkpoint or rotation record as its line's JSON object."""
    if isinstance(statement, Checkpoint):
        return checkpoint_record(statement)
    return {
        "type": "rotation",
        "seq": statement.seq,
        "head": statement.head.hex(),
        "at": statement.at,
        "from": statement.from_thumbprint,
        "to": statement.to_thumbprint,
        "from_signature": b64url(statement.from_signature),
        "to_signature": b64url(statement.to_signature),
    }


def checkpoint_record(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "type": "checkpoint",
        "seq": checkpoint.seq,
        "head": checkpoint.head.hex(),
        "at": checkpoint.at,
        "reason": checkpoint.reason,
        "thumbprint": checkpoint.thumbprint,
        "signature": b64url(checkpoint.signature),
    }


def record_item(value: dict[str, Any]) -> AuditItem:
    """The entry, checkpoint or rotation record ``value`` holds; ``ValueError``
    saying what is wrong with it."""
    kind = value.get("type")
    if kind == "entry":
        return _entry(value)
    if kind == "checkpoint":
        return _checkpoint(value)
    if kind == "rotation":
        return _rotation(value)
    raise ValueError("its type is none of entry, checkpoint and rotation")


def _entry(value: dict[str, Any]) -> AuditEntry:
    exact_keys(value, _ENTRY_KEYS)
    target = value["target"]
    return AuditEntry(
        seq=_seq(value),
        target=None if target is None else text_of(value, "target"),
        **{key: text_of(value, key) for key in _ENTRY_TEXT},
        prev_hash=_digest(value, "prev"),
        hash=_digest(value, "hash"),
        mac=None,
    )


def _checkpoint(value: dict[str, Any]) -> Checkpoint:
    exact_keys(value, _CHECKPOINT_KEYS)
    return Checkpoint(
        seq=_seq(value),
        head=_digest(value, "head"),
        at=text_of(value, "at"),
        reason=text_of(value, "reason"),
        thumbprint=text_of(value, "thumbprint"),
        signature=_signature(value, "signature"),
    )


def _rotation(value: dict[str, Any]) -> Rotation:
    exact_keys(value, _ROTATION_KEYS)
    return Rotation(
        seq=_seq(value),
        head=_digest(value, "head"),
        at=text_of(value, "at"),
        from_thumbprint=text_of(value, "from"),
        to_thumbprint=text_of(value, "to"),
        from_signature=_signature(value, "from_signature"),
        to_signature=_signature(value, "to_signature"),
    )


def _signature(value: dict[str, Any], key: str) -> bytes:
    signature = text_of(value, key)
    if not _B64URL.fullmatch(signature) or len(signature) > 4 * MAX_SIGNATURE_BYTES // 3 + 4:
        raise ValueError(f"{key} must be base64url")
    try:
        return base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except binascii.Error as e:
        raise ValueError(f"{key} must be base64url") from e


def exact_keys(value: dict[str, Any], expected: frozenset[str]) -> None:
    if set(value) != expected:
        raise ValueError(f"its keys must be exactly {', '.join(sorted(expected))}")


def _seq(value: dict[str, Any]) -> int:
    seq = value["seq"]
    if type(seq) is not int or not 1 <= seq <= _MAX_SEQ:
        raise ValueError("seq must be a positive integer")
    return seq


def text_of(value: dict[str, Any], key: str) -> str:
    text = value[key]
    if not isinstance(text, str):
        raise ValueError(f"{key} must be a string")
    text.encode("utf-8")  # a lone surrogate (UnicodeEncodeError) is no text
    return text


def _digest(value: dict[str, Any], key: str) -> bytes:
    text = text_of(value, key)
    if not _HEX_DIGEST.fullmatch(text):
        raise ValueError(f"{key} must be {DIGEST_BYTES} bytes in lowercase hex")
    return bytes.fromhex(text)
