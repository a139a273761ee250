"""Trails to tamper with, shared by the audit tests: build one, reach into its
database as a file writer would, export it and edit the export's lines."""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent_keys.gateway_identity import (
    GatewayCertificate,
    GatewayPrivateKey,
    b64url,
    generate_gateway_identity,
)
from agent_keys.randomness import system_random
from tests.conftest import make_context
from vault.audit.log import AuditLog
from vault.audit.verify import TrailReport
from vault.format.audit_chain import AuditFields, canonical_json, entry_digest
from vault.gateway import Gateway

TRAIL_LENGTH = 250
"""The tamper matrix's trail: interval checkpoints lie at 100 and 200."""
ROTATED_AT = 251
"""In the ``rotated`` export: the cert.rotated entry and its rotation record."""
ROTATED_LAST = 321
"""In the ``rotated`` export: its last entry, audit.exported, and the closing checkpoint."""

ENTRY_FIELDS = (
    "seq", "at", "actor", "channel", "action", "target", "outcome", "request_id", "details",
)  # fmt: skip

Lines = list[dict[str, object]]


@dataclass(frozen=True)
class RotatedExport:
    """An export across a key rotation, and what a thief of the old key holds."""

    path: Path
    data_dir: Path  # the vault it was exported from
    old: GatewayCertificate
    old_key: GatewayPrivateKey
    new: GatewayCertificate


def build_trail(gateway: Gateway, length: int = TRAIL_LENGTH) -> None:
    """Append cheap, distinct entries (each names its own seq) up to ``length``."""
    tail = gateway.store.audit_tail()
    assert tail is not None
    with gateway.store.write():
        for seq in range(tail[0] + 1, length + 1):
            assert gateway.audit.record("credential.tested", f"pg-{seq}", n=seq) == seq


def verify_db(data_dir: Path) -> TrailReport:
    with Gateway.open(data_dir, make_context()) as gateway:
        return AuditLog(gateway).verify()


def write_export(gateway: Gateway, path: Path) -> None:
    def write(lines: Iterator[bytes] | object) -> None:
        assert isinstance(lines, Iterator)
        path.write_bytes(b"".join(lines))

    AuditLog(gateway).export(write)


def read_lines(path: Path) -> Lines:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def write_lines(path: Path, lines: Lines) -> None:
    path.write_bytes(b"".join(canonical_json(line).encode() + b"\n" for line in lines))


def line_index(lines: Lines, kind: str, seq: int) -> int:
    [i] = [i for i, line in enumerate(lines) if line["type"] == kind and line["seq"] == seq]
    return i


def export_fields(line: dict[str, object]) -> AuditFields:
    return AuditFields(**{key: line[key] for key in ENTRY_FIELDS})  # type: ignore[arg-type]


def rechain_export_from(lines: Lines, seq: int) -> None:
    """Recompute prev and hash of every entry from ``seq`` on, as anyone can."""
    prev = bytes.fromhex(str(lines[line_index(lines, "entry", seq - 1)]["hash"]))
    for line in lines:
        if line["type"] == "entry" and isinstance(line["seq"], int) and line["seq"] >= seq:
            digest = entry_digest(prev, export_fields(line))
            line["prev"], line["hash"] = prev.hex(), digest.hex()
            prev = digest


def flipped_signature(text: object) -> str:
    """A base64url signature with one bit of its first byte flipped."""
    raw = bytearray(base64.urlsafe_b64decode(str(text) + "=="))
    raw[0] ^= 1
    return b64url(bytes(raw))


def forged_identity(gateway_id: str) -> tuple[GatewayPrivateKey, GatewayCertificate]:
    """A key pair of the attacker's own, in a certificate that names the gateway."""
    now = datetime.datetime.now(datetime.UTC)
    return generate_gateway_identity("gw-test", gateway_id, "ec-p256", now, system_random)
