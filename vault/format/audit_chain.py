"""The audit trail's tamper evidence, defined once: how an entry is hashed,
MACed and checkpointed.

Pure functions over bytes (no I/O, no clock, no randomness): the writer
(``vault.audit.trail``), the vault's own verifier and an auditor's verifier of an
export all call these, so the format has one definition.  An auditor can
recompute everything here in any language from docs/audit-format.md:

- entry digest = SHA-256("gwvault-audit-entry/v1" 0x00 || prev || u64be(seq)
  || field...), the fields being at, actor, channel, action, target, outcome,
  request_id and details, each 0x00 when absent (only target may be) or
  0x01 || u32be(byte length) || UTF-8 bytes.  ``details`` is the stored JSON
  text byte for byte.  ``prev`` is the previous entry's digest; the first
  entry's is the genesis value SHA-256("gwvault-audit-genesis/v1|" + gateway id).
- entry MAC = HMAC-SHA256(audit key, "gwvault-audit-mac/v1" 0x00 || digest).
  The audit key is random and wrapped by the GMK, so only the vault can MAC.
- checkpoint = the gateway key's signature over a canonical JSON object naming
  the gateway, a sequence number, the chain head at it, the time and why it
  was signed.  Anyone with the certificate can check it.
- rotation record = the same kind of object naming the certificate signing
  stopped with and the one it went on with, signed by both keys, so trust in
  one certificate carries over to the next (and back) and nowhere else.
- head note = the vault's own MACed note of its last MACed entry: its
  sequence number, digest, time and the gateway epoch.

``docs/audit-format.md`` is the normative description of all of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from dataclasses import dataclass

from agent_keys.secret import Secret

DIGEST_BYTES = 32
CHECKPOINT_INTERVAL = 100
"""A checkpoint is signed after this many entries (and at every export and prune)."""

# Events that record a failure to unlock are written without a MAC: the key
# that would MAC them may be exactly what is missing.  They are still chained,
# so the next MACed entry (or checkpoint) seals them in place.
UNKEYED_ACTIONS = frozenset({"vault.unlock-failed", "recovery-key.failed"})

PRUNED_ACTION = "audit.pruned"
"""Its ``through_seq`` detail is what lets a trail start after entry 1."""

_ENTRY_DOMAIN = b"gwvault-audit-entry/v1\x00"
_MAC_DOMAIN = b"gwvault-audit-mac/v1\x00"
_HEAD_DOMAIN = b"gwvault-audit-head/v1\x00"
_HEAD_V2_DOMAIN = b"gwvault-audit-head/v2\x00"
_CHECKPOINT_TYPE = "gwvault-audit-checkpoint/v1"
_ROTATION_TYPE = "gwvault-audit-rotation/v1"


@dataclass(frozen=True)
class AuditFields:
    """What one entry says: who did what to which target, when, with what outcome."""

    seq: int
    at: str
    actor: str
    channel: str
    action: str
    target: str | None
    outcome: str
    request_id: str
    details: str  # canonical JSON text of the event's identifiers; never a secret


@dataclass(frozen=True)
class AuditEntry(AuditFields):
    """An entry as stored and exported: its fields, its place in the chain, its MAC."""

    prev_hash: bytes
    hash: bytes
    mac: bytes | None  # None only for UNKEYED_ACTIONS and entries older than the audit key


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the chain had this head at entry ``seq``."""

    seq: int
    head: bytes
    at: str
    reason: str  # 'interval', 'export' or 'prune'
    thumbprint: str  # of the gateway certificate whose key signed it
    signature: bytes


@dataclass(frozen=True)
class Rotation:
    """A signed statement: at entry ``seq`` (head ``head``) the gateway went on
    signing with ``to_thumbprint``'s key instead of ``from_thumbprint``'s.

    Both keys sign the same message, so a verifier who trusts either
    certificate learns the other, and for which entries each may sign."""

    seq: int
    head: bytes
    at: str
    from_thumbprint: str
    to_thumbprint: str
    from_signature: bytes
    to_signature: bytes


@dataclass(frozen=True)
class AuditHead:
    """The vault's own MACed note of its last MACed entry (catches a cut-off tail).

    A version-2 note also binds the entry's time and the gateway epoch, so a
    note put back after a rollback shows its old time (``at``) and a note from
    before a restore does not pass for one after it; a version-1 note (written
    before gwvault bound them) has neither."""

    seq: int
    hash: bytes
    mac: bytes
    at: str | None = None
    epoch: int | None = None


@dataclass(frozen=True)
class MacKey:
    """The vault's audit key and the first entry it MACed."""

    key: Secret
    keyed_from: int


def canonical_json(value: object) -> str:
    """Sorted keys, no whitespace, non-ASCII as \\u escapes: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def genesis(gateway_id: str) -> bytes:
    """The ``prev`` of a gateway's first entry."""
    return hashlib.sha256(f"gwvault-audit-genesis/v1|{gateway_id}".encode()).digest()


_U64 = struct.Struct(">Q").pack
_U32 = struct.Struct(">I").pack


def entry_digest(prev: bytes, fields: AuditFields) -> bytes:
    digest = hashlib.sha256(_ENTRY_DOMAIN + prev + _U64(fields.seq))
    for value in (
        fields.at, fields.actor, fields.channel, fields.action, fields.target, fields.outcome,
        fields.request_id, fields.details,
    ):  # fmt: skip
        if value is None:
            digest.update(b"\x00")
        else:
            encoded = value.encode("utf-8")
            digest.update(b"\x01" + _U32(len(encoded)) + encoded)
    return digest.digest()


def entry_mac(audit_key: Secret, digest: bytes) -> bytes:
    return hmac.digest(audit_key.reveal(), _MAC_DOMAIN + digest, "sha256")


def head_mac(
    audit_key: Secret, seq: int, digest: bytes, at: str | None = None, epoch: int | None = None
) -> bytes:
    """The head note's MAC: version 2 with ``at`` and ``epoch``, else version 1."""
    if at is None or epoch is None:
        message = _HEAD_DOMAIN + _U64(seq) + digest
    else:
        encoded = at.encode("utf-8")
        message = _HEAD_V2_DOMAIN + _U64(seq) + digest + _U64(epoch) + _U32(len(encoded)) + encoded
    return hmac.digest(audit_key.reveal(), message, "sha256")


def macs_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def checkpoint_message(gateway_id: str, seq: int, head: bytes, at: str, reason: str) -> bytes:
    """The bytes a checkpoint signature covers."""
    return canonical_json(
        {
            "type": _CHECKPOINT_TYPE,
            "gateway_id": gateway_id,
            "seq": seq,
            "head": head.hex(),
            "at": at,
            "reason": reason,
        }
    ).encode("ascii")


def rotation_message(
    gateway_id: str, seq: int, head: bytes, at: str, *, from_thumbprint: str, to_thumbprint: str
) -> bytes:
    """The bytes both signatures of a rotation record cover."""
    return canonical_json(
        {
            "type": _ROTATION_TYPE,
            "gateway_id": gateway_id,
            "seq": seq,
            "head": head.hex(),
            "at": at,
            "from": from_thumbprint,
            "to": to_thumbprint,
        }
    ).encode("ascii")
