"""Verifying an audit trail: the vault's own (with the audit key) and an
auditor's (an export and the gateway certificate, no secret).

One streaming pass, stopping at the first entry that cannot be proven intact,
whose sequence number the report names:

- every entry follows the one before: its sequence number is the next one and
  its ``prev`` is the previous entry's digest, so a deleted, inserted or
  reordered entry breaks the link where it happened;
- its digest recomputes from its fields, so a naive edit is caught in place;
- with the audit key (inside the vault) its MAC verifies, so an edit whose
  author recomputed the chain is caught in place too;
- every checkpoint and rotation record whose signer is trusted for its entry
  (``vault.audit.signer_trust``: the certificate given, and those rotation
  records link to it) verifies, and its head equals the chain at its entry.
  One by any other certificate verifies nothing: it is counted as unvouched
  and skipped.  Without the audit key, a re-chained edit shows up at the next
  trusted checkpoint; the report then names the first entry after the last
  one that held;
- the chain starts at entry 1 from the gateway's genesis value, or right after
  a ``prune`` checkpoint whose head it continues, and an ``audit.pruned`` entry
  in the trail itself records that prune.  The entry is what proves it: it is
  MACed, and covered by the closing checkpoint of an export;
- nothing is missing at the end: no checkpoint or rotation record (and not the
  vault's MACed head note) lies beyond the last entry.  An export must end in
  its own ``export`` checkpoint, signed by a trusted certificate, so an export
  cut off right after an interval checkpoint is caught too.

``docs/audit-format.md`` states these rules for an export, normatively.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from agent_keys.gateway_identity import GatewayCertificate
from vault.audit.report import TrailReport
from vault.audit.signer_trust import SignerTrust
from vault.format.audit_chain import (
    PRUNED_ACTION,
    UNKEYED_ACTIONS,
    AuditEntry,
    AuditHead,
    Checkpoint,
    MacKey,
    Rotation,
    checkpoint_message,
    entry_digest,
    entry_mac,
    genesis,
    head_mac,
    macs_equal,
)
from vault.format.strict_json import parse_json_object

__all__ = ["Statement", "TrailReport", "TrailVerifier"]

Statement = Checkpoint | Rotation
"""What the gateway key signed about the chain at an entry."""


class _Broken(Exception):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


class TrailVerifier:
    """Checks one trail against its signed statements (and, in the vault, its MACs)."""

    def __init__(
        self,
        gateway_id: str,
        checkpoints: Sequence[Checkpoint],
        trust: SignerTrust,
        mac: MacKey | None = None,
        *,
        keyless_vault: bool = False,
    ) -> None:
        self._gateway_id = gateway_id
        self._checkpoints = sorted(checkpoints, key=lambda c: c.seq)
        # At each entry its checkpoints come first, then its rotation record.
        self._statements: list[Statement] = sorted(
            [*self._checkpoints, *trust.rotations],
            key=lambda s: (s.seq, isinstance(s, Rotation)),
        )
        self._trust = trust
        self._mac = mac
        # The vault's own trail before it has an audit key (new, or just
        # upgraded to the chain): every entry is unkeyed, and no interval or
        # export checkpoint can exist yet.
        self._keyless_vault = keyless_vault
        self._entries = 0
        self._first: int | None = None
        self._last: int | None = None
        self._verified_checkpoints = 0
        self._verified_rotations = 0
        self._signed_through: int | None = None
        self._signed_at: str | None = None
        self._signed_by: Statement | None = None  # the statement that set signed_through
        self._export_closed_at: int | None = None  # the entry of a verified export checkpoint
        self._unkeyed = 0
        self._unvouched = 0
        self._last_keyed = 0
        self._at_head: dict[int, tuple[bytes, str]] = {}  # the head note's entry: digest, time
        self._head: AuditHead | None = None  # the head note, once its MAC held
        self._pruned_through: set[int] = set()  # as the trail's audit.pruned entries say

    def verify(
        self,
        entries: Iterable[AuditEntry],
        *,
        head: AuditHead | None = None,
        epoch: int | None = None,
        closing: bool = False,
        anchor: AuditEntry | None = None,
    ) -> TrailReport:
        """Verify ``entries`` in order.

        ``head``: the vault's MACed note of its last MACed entry, and ``epoch``
        the vault's gateway epoch (vault only).  ``closing``: the trail is an
        export and must end in its own checkpoint, by a trusted signer.
        ``anchor``: the entry a full check verified through (vault.audit.mark);
        ``entries`` then start right after it, and what lies before it (and
        the statements up to it) is taken as that check found it.
        """
        try:
            if self._trust.broken is not None:
                raise _Broken(self._trust.broken.seq, self._trust.broken.problem)
            self._walk(entries, head.seq if head is not None else None, anchor)
            self._check_end(head, epoch, closing)
        except _Broken as broken:
            return self._report(broken.seq, broken.problem)
        return self._report(None, None)

    # -- the walk ---------------------------------------------------------------

    @property
    def verified_head(self) -> AuditHead | None:
        """The vault's head note, once it held against the trail (None otherwise)."""
        return self._head

    def _walk(
        self, entries: Iterable[AuditEntry], head_seq: int | None, anchor: AuditEntry | None
    ) -> None:
        pending = iter(self._statements)
        statement = next(pending, None)
        prev = b""
        expected = 0
        if anchor is not None:
            prev, expected = self._resume(anchor, head_seq)
            while statement is not None and statement.seq <= anchor.seq:
                statement = next(pending, None)
        for entry in entries:
            if self._first is None:
                prev, expected = self._start(entry.seq)
                # What was signed about pruned entries can no longer be checked.
                while statement is not None and statement.seq < expected:
                    statement = next(pending, None)
            self._check_link(entry, expected, prev)
            self._check_mac(entry)
            while statement is not None and statement.seq == entry.seq:
                self._check_statement(statement, entry)
                statement = next(pending, None)
            if entry.seq == head_seq:
                self._at_head[entry.seq] = (entry.hash, entry.at)
            if entry.action == PRUNED_ACTION:
                self._note_prune(entry)
            self._entries += 1
            self._last = entry.seq
            prev, expected = entry.hash, entry.seq + 1
        if self._first is None:
            raise _Broken(1, "the trail has no entries")
        if anchor is None and self._first > 1 and self._first - 1 not in self._pruned_through:
            raise _Broken(
                self._first - 1,
                f"entries before {self._first} are gone and no audit.pruned entry in the trail"
                " records pruning them",
            )
        if statement is not None:
            raise _Broken(
                expected,
                f"entry {expected} is missing: the trail ends at entry {self._last} but a signed"
                f" checkpoint or rotation record covers up to entry {self._statements[-1].seq}"
                " (cut off)",
            )

    def _resume(self, anchor: AuditEntry, head_seq: int | None) -> tuple[bytes, int]:
        """The ``prev`` and sequence number after ``anchor``, whose own digest and
        MAC are checked again (the caller checked its digest is the mark's)."""
        if not macs_equal(entry_digest(anchor.prev_hash, anchor), anchor.hash):
            raise _Broken(anchor.seq, "its content does not match its digest (edited)")
        self._check_mac(anchor)
        if anchor.seq == head_seq:
            self._at_head[anchor.seq] = (anchor.hash, anchor.at)
        self._first, self._last = anchor.seq, anchor.seq
        self._entries += 1
        return anchor.hash, anchor.seq + 1

    def _start(self, first_seq: int) -> tuple[bytes, int]:
        """The ``prev`` and sequence number the first entry must have."""
        self._first = first_seq
        if first_seq == 1:
            return genesis(self._gateway_id), 1
        anchors = [c for c in self._checkpoints if c.reason == "prune" and c.seq < first_seq]
        anchor = anchors[-1] if anchors else None
        missing_from = anchor.seq + 1 if anchor else 1
        if anchor is None or anchor.seq != first_seq - 1:
            raise _Broken(
                missing_from,
                f"entries {missing_from}..{first_seq - 1} are missing and no signed prune"
                " checkpoint accounts for them",
            )
        # The trail's own audit.pruned entry is what proves the prune; the
        # checkpoint's signature counts only when its signer is trusted.
        if self._trusted_signer(anchor) is None:
            self._unvouched += 1
        elif not self._checkpoint_holds(anchor, anchor.head):
            raise _Broken(
                missing_from, "the prune checkpoint before the first entry is not validly signed"
            )
        else:
            self._verified(anchor)
        return anchor.head, first_seq

    def _note_prune(self, entry: AuditEntry) -> None:
        try:
            through = parse_json_object(entry.details).get("through_seq")
        except ValueError:
            return  # not the details prune writes (too deep to parse, even): it proves nothing
        if type(through) is int:
            self._pruned_through.add(through)

    def _check_link(self, entry: AuditEntry, expected: int, prev: bytes) -> None:
        seq = entry.seq
        if seq != expected:
            if seq > expected:
                raise _Broken(expected, f"entry {expected} is missing (the next entry is {seq})")
            raise _Broken(
                seq, f"entry {seq} appears again, or out of order, after entry {expected - 1}"
            )
        if not macs_equal(entry.prev_hash, prev):
            raise _Broken(
                seq,
                "it does not follow the entry before it (an entry was deleted, inserted or"
                " moved here)",
            )
        if not macs_equal(entry_digest(prev, entry), entry.hash):
            raise _Broken(seq, "its content does not match its digest (edited)")

    def _check_mac(self, entry: AuditEntry) -> None:
        if self._mac is None:
            self._unkeyed += self._keyless_vault
            return
        if entry.mac is None:
            if entry.seq >= self._mac.keyed_from and entry.action not in UNKEYED_ACTIONS:
                raise _Broken(
                    entry.seq, "it carries no MAC (added by someone without the audit key)"
                )
            self._unkeyed += 1
            return
        if not macs_equal(entry_mac(self._mac.key, entry.hash), entry.mac):
            raise _Broken(
                entry.seq, "its MAC does not verify (edited, even if the chain was recomputed)"
            )
        self._last_keyed = entry.seq

    def _check_statement(self, statement: Statement, entry: AuditEntry) -> None:
        if isinstance(statement, Rotation):
            # Its two signatures were checked with the chain (SignerTrust).
            trusted = self._trust.anchor_on_chain
            holds = trusted and macs_equal(statement.head, entry.hash)
            name = "rotation record"
        else:
            trusted = self._trusted_signer(statement) is not None
            holds = trusted and self._checkpoint_holds(statement, entry.hash)
            name = "checkpoint"
        if not trusted:
            self._unvouched += 1  # it verifies nothing (T-AU-13)
            return
        if holds:
            self._verified(statement)
            return
        if self._mac is not None:
            # Each entry's MAC held, so it is the signed statement that was altered.
            raise _Broken(statement.seq, f"the signed {name} at this entry does not verify")
        start = self._unproven_from()
        raise _Broken(
            start,
            f"entries {start}..{statement.seq} do not match the {name} signed at entry"
            f" {statement.seq}: one of them was edited, added or removed and the chain"
            " recomputed",
        )

    def _check_end(self, head: AuditHead | None, epoch: int | None, closing: bool) -> None:
        last = self._last or 0
        if self._mac is not None:
            self._check_rekeyed(self._mac.keyed_from)
            self._check_head(head, epoch, last)
        elif self._keyless_vault:
            self._check_rekeyed(last + 1)
        if closing:
            self._check_closing(last)

    def _check_closing(self, last: int) -> None:
        """An export ends in its own checkpoint, at its last entry, by a trusted signer."""
        if self._signed_through != last:
            start = self._unproven_from()
            raise _Broken(
                start,
                f"entries {start}..{last} are not covered by a closing checkpoint signed by the"
                " certificate given, or one a rotation record links to it (cut off, appended"
                " to, or closed by another key)",
            )
        signed_by = self._signed_by
        if self._export_closed_at != last:
            # Every entry is signed, but the last statement is an interval (or
            # prune) checkpoint or a rotation record: what followed it, up to
            # the export's own checkpoint, was cut off.
            kind = "a rotation record"
            if isinstance(signed_by, Checkpoint):
                article = "an" if signed_by.reason[:1] in ("a", "e", "i", "o", "u") else "a"
                kind = f"{article} {signed_by.reason} checkpoint"
            raise _Broken(
                last + 1,
                f"entry {last + 1} is missing: the trail ends at entry {last} at {kind}, not"
                " the one an export closes with (cut off)",
            )

    def _check_rekeyed(self, keyed_from: int) -> None:
        # The vault signs interval and export checkpoints and rotation records
        # only after it has an audit key (vault.audit.trail), so one before the
        # key's first entry means the key was deleted and made anew, and the
        # old MACs (and the head note) stripped: what followed it is unproven.
        # A prune checkpoint may legitimately come first, in a vault from
        # before the chain.
        early = [
            s.seq
            for s in self._statements
            if not (isinstance(s, Checkpoint) and s.reason == "prune")
            and (self._first or 1) <= s.seq < keyed_from
        ]
        if early:
            raise _Broken(
                early[-1] + 1,
                f"the vault's audit key starts at entry {keyed_from}, but a checkpoint at entry"
                f" {early[-1]} was signed with a key already in place: the key was replaced and"
                " the entries after that checkpoint can no longer be proven",
            )

    def _check_head(self, head: AuditHead | None, epoch: int | None, last: int) -> None:
        assert self._mac is not None  # noqa: S101 - only called with the audit key
        if head is None:
            if self._mac.keyed_from <= last:
                raise _Broken(last + 1, "the vault's note of its last entry is missing")
            return
        expected_mac = head_mac(self._mac.key, head.seq, head.hash, head.at, head.epoch)
        if not macs_equal(expected_mac, head.mac):
            raise _Broken(head.seq, "the vault's note of its last entry was altered")
        if head.seq > last:
            raise _Broken(
                last + 1,
                f"entry {last + 1} is missing: the trail ends at entry {last} but the vault"
                f" recorded entries up to {head.seq} (cut off)",
            )
        found = self._at_head.get(head.seq)
        if (
            found is None
            or found[0] != head.hash
            or (head.at is not None and found[1] != head.at)
            or self._last_keyed > head.seq
        ):
            raise _Broken(head.seq, "the vault's note of its last entry does not match the trail")
        if head.epoch is not None and epoch is not None and head.epoch != epoch:
            raise _Broken(
                head.seq,
                f"the vault's note of its last entry was written in epoch {head.epoch}, but the"
                f" vault says epoch {epoch} (its epoch setting or the note was put back)",
            )
        self._head = head

    def _unproven_from(self) -> int:
        """The first entry no verified checkpoint covers."""
        if self._signed_through is not None:
            return self._signed_through + 1
        return self._first or 1

    # -- signed statements --------------------------------------------------------

    def _trusted_signer(self, checkpoint: Checkpoint) -> GatewayCertificate | None:
        return self._trust.signer(checkpoint.thumbprint, checkpoint.seq)

    def _checkpoint_holds(self, checkpoint: Checkpoint, head: bytes) -> bool:
        certificate = self._trusted_signer(checkpoint)
        if certificate is None or not macs_equal(checkpoint.head, head):
            return False
        message = checkpoint_message(
            self._gateway_id, checkpoint.seq, checkpoint.head, checkpoint.at, checkpoint.reason
        )
        return certificate.verifies(message, checkpoint.signature)

    def _verified(self, statement: Statement) -> None:
        if isinstance(statement, Rotation):
            self._verified_rotations += 1
        else:
            self._verified_checkpoints += 1
            if statement.reason == "export":
                self._export_closed_at = statement.seq
        if statement.seq >= (self._signed_through or 0):
            self._signed_through, self._signed_at = statement.seq, statement.at
            self._signed_by = statement

    def _report(self, bad_seq: int | None, problem: str | None) -> TrailReport:
        head = self._head if bad_seq is None else None
        return TrailReport(
            ok=bad_seq is None,
            entries=self._entries,
            first_seq=self._first,
            last_seq=self._last,
            checkpoints=self._verified_checkpoints,
            rotations=self._verified_rotations,
            signed_through=self._signed_through,
            signed_at=self._signed_at,
            head_seq=head.seq if head is not None else None,
            head_at=head.at if head is not None else None,
            unkeyed=self._unkeyed,
            unvouched=self._unvouched,
            first_bad_seq=bad_seq,
            problem=problem,
        )
