"""What a sink is sent next: the records after its place, and its place after them.

A sink's place (``audit_sink_places``) is the last entry and the last signed
checkpoint it was sent.  The records after it are, in order: each entry, then
the checkpoints signed at that entry and its rotation record (as an export
writes them); a checkpoint signed later for an earlier entry (an export's, a
prune's) comes first.  Every record is the export's JSON object for its line
(``vault.audit.records``, ``docs/audit-format.md``) with the gateway's id
added, so a collector holding several gateways' trails can tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vault.audit.records import entry_record, statement_record
from vault.format.audit_chain import Checkpoint, Rotation
from vault.store.vault_store import VaultStore

MAX_ERROR_CHARS = 300
BATCH_ENTRIES = 500
"""At most this many entries per send: a buffer sink catching up after an
outage of a busy gateway sends its backlog in bounded pieces."""


@dataclass(frozen=True)
class Place:
    through_seq: int
    through_checkpoint: int


@dataclass(frozen=True)
class Batch:
    records: tuple[dict[str, Any], ...]
    place: Place  # the sink's place once these records are taken
    entries: int

    @property
    def empty(self) -> bool:
        return not self.records


def place_of(store: VaultStore, sink_id: str) -> Place | None:
    rows = store.rows(
        "SELECT through_seq, through_checkpoint FROM audit_sink_places WHERE sink_id = ?",
        [sink_id],
    )
    if not rows:
        return None
    return Place(int(rows[0]["through_seq"]), int(rows[0]["through_checkpoint"]))


def next_batch(
    store: VaultStore, gateway_id: str, place: Place, most: int = BATCH_ENTRIES
) -> Batch:
    """The records after ``place``, at most ``most`` entries (and every
    checkpoint and rotation record up to the last of them)."""
    entries = store.find_audit("seq > ?", [place.through_seq], most, oldest_first=True)
    through_seq = entries[-1].seq if entries else place.through_seq
    checkpoint_rows = store.rows(
        "SELECT id, seq, head, at, reason, thumbprint, signature FROM audit_checkpoints"
        " WHERE id > ? AND seq <= ? ORDER BY id",
        [place.through_checkpoint, through_seq],
    )
    rotations = [
        Rotation(**row)
        for row in store.rows(
            "SELECT seq, head, at, from_thumbprint, to_thumbprint, from_signature, to_signature"
            " FROM audit_rotations WHERE seq > ? AND seq <= ? ORDER BY seq",
            [place.through_seq, through_seq],
        )
    ]
    checkpoints = [
        Checkpoint(**{key: value for key, value in row.items() if key != "id"})
        for row in checkpoint_rows
    ]
    through_checkpoint = (
        int(checkpoint_rows[-1]["id"]) if checkpoint_rows else place.through_checkpoint
    )
    # Statements about entries sent before go first; the rest after their entry.
    earlier = [c for c in checkpoints if c.seq <= place.through_seq]
    by_seq: dict[int, list[Checkpoint | Rotation]] = {}
    for statement in [c for c in checkpoints if c.seq > place.through_seq] + rotations:
        by_seq.setdefault(statement.seq, []).append(statement)
    records = [statement_record(c) for c in earlier]
    for entry in entries:
        records.append(entry_record(entry))
        records += [statement_record(s) for s in by_seq.get(entry.seq, [])]
    return Batch(
        tuple({**record, "gateway_id": gateway_id} for record in records),
        Place(through_seq, through_checkpoint),
        len(entries),
    )


def move_place(store: VaultStore, sink_id: str, place: Place, sent_at: str) -> None:
    """Record that the sink took everything through ``place`` (inside a write)."""
    store.execute(
        "UPDATE audit_sink_places SET through_seq = ?, through_checkpoint = ?, sent_at = ?,"
        " failing_since = NULL, last_error = NULL WHERE sink_id = ?",
        [place.through_seq, place.through_checkpoint, sent_at, sink_id],
    )


def mark_failing(store: VaultStore, sink_id: str, at: str, error: str) -> None:
    """Record that the sink did not take what it was sent (inside a write): since
    when (the first failure) and why (the last).  ``move_place`` clears both."""
    store.execute(
        "UPDATE audit_sink_places SET failing_since = coalesce(failing_since, ?),"
        " last_error = ? WHERE sink_id = ?",
        [at, error[:MAX_ERROR_CHARS], sink_id],
    )


def entries_behind(store: VaultStore, place: Place) -> int:
    """How many entries the sink has not been sent yet."""
    tail = store.audit_tail()
    return max(0, (tail[0] if tail else 0) - place.through_seq)
