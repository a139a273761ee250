"""The audit export: a JSON Lines file an auditor checks with the gateway
certificate alone (``gwvault audit verify-export FILE --cert GATEWAY.pem``).

Line 1 is a header (gateway id and name, when, by whom, and every certificate
that signed a checkpoint or a rotation record); then one line per entry, per
checkpoint and per rotation record in sequence order, a signed statement right
after the entry it covers (or before the first entry, for pruned ones); the
last line is the checkpoint the export itself signed.  Entries carry their
fields, ``prev`` and ``hash`` (hex) but not their MACs, which only the vault's
audit key checks.  The header is not signed: what the verdict rests on is the
chain and the closing checkpoint, checked with the certificate the auditor
brings or one that rotation records link to it (``docs/audit-format.md`` is
the normative description).  Version 1 (before rotation records) is still read.

Reading is strict, since the file comes from outside: every line is bounded,
is one JSON object read by ``vault.format.strict_json`` (no repeated key, no
lone surrogate, no NaN), has exactly the keys of its type with the right JSON
types, or the file is refused with ``InvalidInputError`` naming the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import GatewayCertificate
from vault.audit.records import entry_record, exact_keys, record_item, statement_record, text_of
from vault.audit.signer_trust import SignerTrust
from vault.audit.verify import TrailReport, TrailVerifier
from vault.format.audit_chain import (
    AuditEntry,
    Checkpoint,
    Rotation,
    canonical_json,
)
from vault.format.strict_json import parse_json_object

EXPORT_FORMAT = "gwvault-audit-export"
EXPORT_VERSION = 2
_READ_VERSIONS = (1, 2)  # 1: without rotation records
MAX_LINE_BYTES = 65_536
_MAX_CERTIFICATES = 64
_HEADER_KEYS = frozenset(
    {"type", "version", "gateway_id", "gateway_name", "exported_at", "exported_by", "certificates"}
)


@dataclass(frozen=True)
class ExportHeader:
    gateway_id: str
    gateway_name: str
    exported_at: str
    exported_by: str
    certificates: tuple[str, ...]  # PEM
    version: int = EXPORT_VERSION


# -- writing ------------------------------------------------------------------


def export_lines(
    header: ExportHeader,
    entries: Iterable[AuditEntry],
    checkpoints: list[Checkpoint],
    rotations: list[Rotation],
) -> Iterator[bytes]:
    """The export, line by line (a trail may hold millions of entries)."""
    yield _line(
        {
            "type": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "gateway_id": header.gateway_id,
            "gateway_name": header.gateway_name,
            "exported_at": header.exported_at,
            "exported_by": header.exported_by,
            "certificates": list(header.certificates),
        }
    )
    # At each entry its checkpoints, then its rotation record (as the verifier reads them).
    statements: list[Checkpoint | Rotation] = sorted(
        [*checkpoints, *rotations], key=lambda s: (s.seq, isinstance(s, Rotation))
    )
    pending = iter(statements)
    statement = next(pending, None)
    for entry in entries:
        while statement is not None and statement.seq < entry.seq:
            yield _statement_line(statement)  # about pruned entries, before the first one
            statement = next(pending, None)
        yield _line(entry_record(entry))
        while statement is not None and statement.seq == entry.seq:
            yield _statement_line(statement)
            statement = next(pending, None)


def _statement_line(statement: Checkpoint | Rotation) -> bytes:
    return _line(statement_record(statement))


def _line(value: dict[str, Any]) -> bytes:
    return canonical_json(value).encode("ascii") + b"\n"


# -- reading and verifying ----------------------------------------------------


def verify_export(path: Path, certificate: GatewayCertificate) -> tuple[ExportHeader, TrailReport]:
    """Verify the export at ``path`` with the gateway certificate the auditor holds.

    Two streaming passes (signed statements first, then the chain), so the
    file can be larger than memory.  The header's certificates are trusted
    only where rotation records link them to ``certificate``.  A malformed
    file raises ``InvalidInputError``; a well-formed file that was tampered
    with gives a failed ``TrailReport``.
    """
    header, checkpoints, rotations = _read_header_and_statements(path)
    if certificate.gateway_id != header.gateway_id:
        raise InvalidInputError(
            f"the certificate is gateway {certificate.gateway_id}'s; the export is from gateway"
            f" {header.gateway_id}"
        )
    pool = [GatewayCertificate.from_pem(pem.encode("utf-8")) for pem in header.certificates]
    trust = SignerTrust(header.gateway_id, certificate, pool, rotations)
    verifier = TrailVerifier(header.gateway_id, checkpoints, trust)
    with _open(path) as f:
        entries = (item for item in _items(f) if isinstance(item, AuditEntry))
        return header, verifier.verify(entries, closing=True)


def _read_header_and_statements(
    path: Path,
) -> tuple[ExportHeader, list[Checkpoint], list[Rotation]]:
    with _open(path) as f:
        items = _items(f)
        header = next(items)
        assert isinstance(header, ExportHeader)  # noqa: S101 - _items yields it first
        checkpoints: list[Checkpoint] = []
        rotations: list[Rotation] = []
        for item in items:
            if isinstance(item, Checkpoint):
                checkpoints.append(item)
            elif isinstance(item, Rotation):
                if header.version < 2:
                    raise InvalidInputError(
                        "the audit export is version 1, which has no rotation records, but"
                        " it holds one"
                    )
                rotations.append(item)
        return header, checkpoints, rotations


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as e:
        raise InvalidInputError(f"cannot read the audit export {path}: {e.strerror}") from e


def _items(f: BinaryIO) -> Iterator[ExportHeader | AuditEntry | Checkpoint | Rotation]:
    number = 0
    while True:
        raw = f.readline(MAX_LINE_BYTES + 1)
        if not raw:
            if number == 0:
                raise InvalidInputError("the audit export is empty")
            return
        number += 1
        try:
            if len(raw) > MAX_LINE_BYTES or not raw.endswith(b"\n"):
                raise ValueError("it is too long or not terminated by a newline")
            value = parse_json_object(raw)
            if number == 1:
                yield _header(value)
            else:
                yield record_item(value)
        except (ValueError, RecursionError) as e:
            raise InvalidInputError(f"the audit export's line {number} is not valid: {e}") from e


def _header(value: dict[str, Any]) -> ExportHeader:
    exact_keys(value, _HEADER_KEYS)
    version = value["version"]
    if value["type"] != EXPORT_FORMAT or type(version) is not int or version not in _READ_VERSIONS:
        raise ValueError(
            f"it is not a {EXPORT_FORMAT} header of version 1 or 2 (a newer gwvault made it?)"
        )
    certificates = value["certificates"]
    if not isinstance(certificates, list) or len(certificates) > _MAX_CERTIFICATES:
        raise ValueError("certificates must be a list of PEM certificates")
    return ExportHeader(
        gateway_id=text_of(value, "gateway_id"),
        gateway_name=text_of(value, "gateway_name"),
        exported_at=text_of(value, "exported_at"),
        exported_by=text_of(value, "exported_by"),
        certificates=tuple(text_of({"certificate": pem}, "certificate") for pem in certificates),
        version=version,
    )
