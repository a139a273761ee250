"""``gwvault audit verify --against FILE``: the local trail against what a sink received.

The vault's own check (``audit verify``) proves the trail in the data dir is
one gwvault wrote; it cannot tell that trail from an earlier copy put back
(threat T-AU-12).  A sink's copy can: it received every entry as it committed,
so an entry the sink holds must be in the local trail with the same digest.

What fails the check, at the first entry concerned:

- the sink received entries after the local trail's last one: the local tail
  was cut or rolled back;
- the sink received two different entries with one number: the trail was
  rolled back and written on (the sink holds both lives);
- a local entry differs from the one the sink received with its number;
- a checkpoint the sink received signs a digest that is not its entry's.

What does not (and is said in the report): local entries the sink has not
received yet (a buffer sink behind, or a file taken earlier), entries the sink
holds from before a prune, and gaps in the sink's copy (it can vouch for no
entry it lacks).

The file is what a collector wrote: JSON Lines (one record per line, as the
webhook POSTs them) or syslog lines (RFC 5424, the record as MSG; other
programs' lines are skipped).  It is untrusted input: each line is bounded and
read strictly, and a malformed gwvault record refuses the whole file
(``InvalidInputError`` naming the line).  Records of other gateways are
skipped: one collector may hold several trails.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from agent_keys.errors import InvalidInputError
from vault.audit.records import record_item, text_of
from vault.audit.sinks.syslog_message import gwvault_records
from vault.format.audit_chain import AuditEntry, Checkpoint
from vault.store.vault_store import VaultStore

MAX_LINE_BYTES = 70_000
"""An export line's bound, with room for a syslog header in front."""
_MAX_NOTES = 20


@dataclass
class AgainstReport:
    ok: bool = True
    failed_seq: int | None = None
    problem: str | None = None
    sink_entries: int = 0  # distinct entries of this gateway the sink holds
    sink_first: int | None = None
    sink_last: int | None = None
    local_last: int | None = None
    compared: int = 0  # entries found in both and equal
    checkpoints: int = 0
    other_gateways: int = 0  # records of other gateways, skipped
    other_lines: int = 0  # lines that are not gwvault audit records, skipped
    notes: list[str] = field(default_factory=list)

    def fail(self, seq: int, problem: str) -> None:
        if self.ok or (self.failed_seq is not None and seq < self.failed_seq):
            self.ok, self.failed_seq, self.problem = False, seq, problem

    def note(self, text: str) -> None:
        if len(self.notes) < _MAX_NOTES:
            self.notes.append(text)

    def summary(self) -> str:
        held = (
            f"the sink holds entries {self.sink_first}-{self.sink_last}"
            if self.sink_entries
            else "the sink holds no entry of this gateway"
        )
        local = (
            f"the local trail ends at entry {self.local_last}"
            if self.local_last
            else "the local trail is empty"
        )
        if not self.ok:
            return f"FAILED at entry {self.failed_seq}: {self.problem} ({held}; {local})"
        return f"OK: {self.compared} entries match what the sink received ({held}; {local})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "failed_seq": self.failed_seq, "problem": self.problem,
            "sink_entries": self.sink_entries, "sink_first": self.sink_first,
            "sink_last": self.sink_last, "local_last": self.local_last,
            "compared": self.compared, "checkpoints": self.checkpoints,
            "other_gateways": self.other_gateways, "other_lines": self.other_lines,
            "notes": self.notes, "summary": self.summary(),
        }  # fmt: skip


def verify_against(store: VaultStore, gateway_id: str, path: Path) -> AgainstReport:
    """Compare the local trail with the sink's copy at ``path``."""
    report = AgainstReport()
    received: dict[int, bytes] = {}  # seq: digest
    checkpoints: list[Checkpoint] = []
    with _open(path) as f:
        for number, record in _records(f, report):
            try:
                if text_of(record, "gateway_id") != gateway_id:
                    report.other_gateways += 1
                    continue
                item = record_item({k: v for k, v in record.items() if k != "gateway_id"})
            except KeyError as e:
                raise InvalidInputError(f"{path}: line {number} has no {e}") from e
            except (ValueError, RecursionError) as e:
                raise InvalidInputError(f"{path}: line {number} is not a valid record: {e}") from e
            if isinstance(item, AuditEntry):
                if received.setdefault(item.seq, item.hash) != item.hash:
                    report.fail(
                        item.seq,
                        f"the sink received two different entries {item.seq}: the trail was"
                        f" rolled back to before entry {item.seq} and written on",
                    )
            elif isinstance(item, Checkpoint):
                checkpoints.append(item)
    report.sink_entries = len(received)
    if received:
        report.sink_first, report.sink_last = min(received), max(received)
    with store.reading():
        tail = store.audit_tail()
        report.local_last = tail[0] if tail else None
        first_rows = store.rows("SELECT min(seq) AS s FROM audit_events", [])
        local_first = first_rows[0]["s"]
        _compare(store, received, report, None if local_first is None else int(local_first))
    for checkpoint in checkpoints:
        report.checkpoints += 1
        digest = received.get(checkpoint.seq)
        if digest is not None and digest != checkpoint.head:
            report.fail(
                checkpoint.seq,
                f"a checkpoint the sink received signs another digest for entry {checkpoint.seq}",
            )
    _gaps(received, report)
    return report


def _compare(
    store: VaultStore, received: dict[int, bytes], report: AgainstReport, local_first: int | None
) -> None:
    if not received:
        return
    last = report.local_last or 0
    beyond = [seq for seq in received if seq > last]
    if beyond:
        report.fail(
            min(beyond),
            f"the sink received entries through {max(beyond)}, after the local trail's last"
            f" entry {last}: its tail was cut off or rolled back",
        )
    pruned = sum(1 for seq in received if local_first is None or seq < local_first)
    if pruned:
        report.note(f"{pruned} entries the sink holds were pruned from the local trail")
    start = max(report.sink_first or 0, local_first or 0)
    found: set[int] = set()
    for entry in store.audit_entries(after_seq=start - 1):
        if entry.seq > (report.sink_last or 0):
            break
        digest = received.get(entry.seq)
        if digest is None:
            continue
        found.add(entry.seq)
        if digest != entry.hash:
            report.fail(
                entry.seq,
                f"local entry {entry.seq} is not the one the sink received: the local trail was"
                " rolled back or rewritten from there",
            )
        else:
            report.compared += 1
    missing = [seq for seq in received if start <= seq <= last and seq not in found]
    if missing:
        first = min(missing)
        report.fail(first, f"entry {first}, which the sink received, is missing locally")
    if received and last > (report.sink_last or 0):
        report.note(
            f"local entries {(report.sink_last or 0) + 1}-{last} are not in this copy yet"
            " (sent after it was taken, or a buffer sink behind)"
        )


def _gaps(received: dict[int, bytes], report: AgainstReport) -> None:
    ordered = sorted(received)
    for before, after in itertools.pairwise(ordered):
        if after > before + 1:
            report.note(
                f"the sink lacks entries {before + 1}-{after - 1}: it can vouch for none of them"
            )


def _open(path: Path) -> BinaryIO:
    """The copy, if it is a regular file: a FIFO would block the open and a
    device (``/dev/urandom``) would never end."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise InvalidInputError(f"cannot read the sink's copy {path}: {e.strerror}") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidInputError(f"the sink's copy {path} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _records(f: BinaryIO, report: AgainstReport) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    while raw := f.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise InvalidInputError(f"line {number} of the sink's copy is longer than allowed")
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        record = _record_of(line, number)
        if record is None:
            report.other_lines += 1
            continue
        yield number, record


def _record_of(line: bytes, number: int) -> dict[str, Any] | None:
    """The gwvault record on ``line`` (a JSON Lines record or an RFC 5424 syslog
    line), or None for another program's line."""
    try:
        return gwvault_records(line)
    except InvalidInputError as e:
        raise InvalidInputError(f"line {number} of the sink's copy is not valid: {e}") from e
