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
- every checkpoint's signature verifies with the certificate it names and its
  head equals the chain at its entry.  Without the audit key, a re-chained
  edit shows up at the next checkpoint; the report then names the first entry
  after the last checkpoint that held;
- the chain starts at entry 1 from the gateway's genesis value, or right after
  a signed ``prune`` checkpoint whose head it continues, and an ``audit.pruned``
  entry in the trail itself records that prune.  The entry is what proves it:
  it is MACed, and covered by the closing checkpoint of an export, whereas the
  signer of a prune checkpoint may be a certificate taken from the file;
- nothing is missing at the end: no checkpoint (and not the vault's MACed
  head note) lies beyond the last entry.  An export must end in its own
  ``export`` checkpoint, signed by the certificate the auditor holds, so an
  export cut off right after an interval checkpoint is caught too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from agent_keys.gateway_identity import GatewayCertificate
from vault.format.audit_chain import (
    PRUNED_ACTION,
    UNKEYED_ACTIONS,
    AuditEntry,
    AuditHead,
    Checkpoint,
    MacKey,
    checkpoint_message,
    entry_digest,
    entry_mac,
    genesis,
    head_mac,
    macs_equal,
)
from vault.format.strict_json import parse_json_object


@dataclass(frozen=True)
class TrailReport:
    """The verdict on a trail, and where it first went wrong."""

    ok: bool
    entries: int  # entries checked (up to the first bad one)
    first_seq: int | None
    last_seq: int | None
    checkpoints: int  # checkpoints whose signature and head were verified
    signed_through: int | None  # the last entry a verified checkpoint covers
    signed_at: str | None  # the time that checkpoint's signature states
    unkeyed: int  # entries without a MAC (failed unlocks, entries older than the audit key)
    first_bad_seq: int | None
    problem: str | None

    def summary(self) -> str:
        """One line for a terminal or a page."""
        if not self.ok:
            return f"FAILED at entry {self.first_bad_seq}: {self.problem}"
        signed = (
            f"signed through entry {self.signed_through} at {self.signed_at}"
            if self.signed_through is not None
            else "no signed checkpoint yet"
        )
        return f"OK: {self.entries} entries ({self.first_seq}..{self.last_seq}), {signed}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _Broken(Exception):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


class TrailVerifier:
    """Checks one trail against its checkpoints (and, in the vault, its MACs)."""

    def __init__(
        self,
        gateway_id: str,
        checkpoints: Sequence[Checkpoint],
        certificates: Mapping[str, GatewayCertificate],
        mac: MacKey | None = None,
        *,
        keyless_vault: bool = False,
    ) -> None:
        self._gateway_id = gateway_id
        self._checkpoints = sorted(checkpoints, key=lambda c: c.seq)
        self._certificates = certificates
        self._mac = mac
        # The vault's own trail before it has an audit key (new, or just
        # upgraded to the chain): every entry is unkeyed, and no interval or
        # export checkpoint can exist yet.
        self._keyless_vault = keyless_vault
        self._entries = 0
        self._first: int | None = None
        self._last: int | None = None
        self._verified_checkpoints = 0
        self._signed_through: int | None = None
        self._signed_at: str | None = None
        self._unkeyed = 0
        self._last_keyed = 0
        self._hash_at: dict[int, bytes] = {}  # the digest at the head note's entry
        self._pruned_through: set[int] = set()  # as the trail's audit.pruned entries say

    def verify(
        self,
        entries: Iterable[AuditEntry],
        *,
        head: AuditHead | None = None,
        closing_signer: str | None = None,
    ) -> TrailReport:
        """Verify ``entries`` in order.

        ``head``: the vault's MACed note of its last MACed entry (vault only).
        ``closing_signer``: the thumbprint whose checkpoint must close the
        trail at its last entry (an export, checked with the auditor's cert).
        """
        try:
            self._walk(entries, head.seq if head is not None else None)
            self._check_end(head, closing_signer)
        except _Broken as broken:
            return self._report(broken.seq, broken.problem)
        return self._report(None, None)

    # -- the walk ---------------------------------------------------------------

    def _walk(self, entries: Iterable[AuditEntry], head_seq: int | None) -> None:
        pending = iter(self._checkpoints)
        checkpoint = next(pending, None)
        prev = b""
        expected = 0
        for entry in entries:
            if self._first is None:
                prev, expected = self._start(entry.seq)
                # Checkpoints of pruned entries can no longer be checked.
                while checkpoint is not None and checkpoint.seq < expected:
                    checkpoint = next(pending, None)
            self._check_link(entry, expected, prev)
            self._check_mac(entry)
            while checkpoint is not None and checkpoint.seq == entry.seq:
                self._check_checkpoint(checkpoint, entry)
                checkpoint = next(pending, None)
            if entry.seq == head_seq:
                self._hash_at[entry.seq] = entry.hash
            if entry.action == PRUNED_ACTION:
                self._note_prune(entry)
            self._entries += 1
            self._last = entry.seq
            prev, expected = entry.hash, entry.seq + 1
        if self._first is None:
            raise _Broken(1, "the trail has no entries")
        if self._first > 1 and self._first - 1 not in self._pruned_through:
            raise _Broken(
                self._first - 1,
                f"entries before {self._first} are gone and no audit.pruned entry in the trail"
                " records pruning them",
            )
        if checkpoint is not None:
            raise _Broken(
                expected,
                f"entry {expected} is missing: the trail ends at entry {self._last} but a signed"
                f" checkpoint covers up to entry {self._checkpoints[-1].seq} (cut off)",
            )

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
        if not self._signature_holds(anchor):
            raise _Broken(
                missing_from, "the prune checkpoint before the first entry is not validly signed"
            )
        self._verified(anchor)
        return anchor.head, first_seq

    def _note_prune(self, entry: AuditEntry) -> None:
        try:
            through = parse_json_object(entry.details).get("through_seq")
        except ValueError:
            return  # not the details prune writes: it proves nothing
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

    def _check_checkpoint(self, checkpoint: Checkpoint, entry: AuditEntry) -> None:
        if self._signature_holds(checkpoint) and macs_equal(checkpoint.head, entry.hash):
            self._verified(checkpoint)
            return
        if self._mac is not None:
            # Each entry's MAC held, so it is the checkpoint that was altered.
            raise _Broken(checkpoint.seq, "the signed checkpoint at this entry does not verify")
        start = self._unproven_from()
        raise _Broken(
            start,
            f"entries {start}..{checkpoint.seq} do not match the checkpoint signed at entry"
            f" {checkpoint.seq}: one of them was edited, added or removed and the chain"
            " recomputed",
        )

    def _check_end(self, head: AuditHead | None, closing_signer: str | None) -> None:
        last = self._last or 0
        if self._mac is not None:
            self._check_rekeyed(self._mac.keyed_from)
            self._check_head(head, last)
        elif self._keyless_vault:
            self._check_rekeyed(last + 1)
        if closing_signer is not None:
            self._check_closing(closing_signer, last)

    def _check_closing(self, signer: str, last: int) -> None:
        """An export ends in its own checkpoint, at its last entry, by ``signer``."""
        closing = self._checkpoints[-1] if self._checkpoints else None
        if closing is None or closing.seq != last or self._signed_through != last:
            start = self._unproven_from()
            raise _Broken(
                start,
                f"entries {start}..{last} are not covered by a closing checkpoint signed"
                " by the certificate given (cut off or appended to)",
            )
        if closing.thumbprint != signer:
            raise _Broken(
                last,
                f"the checkpoint closing the export at entry {last} is not signed by the"
                " certificate given",
            )
        if closing.reason != "export":
            # Every entry is signed, but the last checkpoint is an interval (or
            # prune) one: what followed it, up to the export's own checkpoint,
            # was cut off.
            raise _Broken(
                last + 1,
                f"entry {last + 1} is missing: the trail ends at entry {last} at an"
                f" {closing.reason} checkpoint, not the one an export closes with (cut off)",
            )

    def _check_rekeyed(self, keyed_from: int) -> None:
        # The vault signs interval and export checkpoints only after it has an
        # audit key (vault.audit.trail), so one before the key's first entry means
        # the key was deleted and made anew, and the old MACs (and the head
        # note) stripped: what followed that checkpoint is unproven.  A prune
        # checkpoint may legitimately come first, in a vault from before the chain.
        early = [
            c.seq
            for c in self._checkpoints
            if c.reason != "prune" and (self._first or 1) <= c.seq < keyed_from
        ]
        if early:
            raise _Broken(
                early[-1] + 1,
                f"the vault's audit key starts at entry {keyed_from}, but a checkpoint at entry"
                f" {early[-1]} was signed with a key already in place: the key was replaced and"
                " the entries after that checkpoint can no longer be proven",
            )

    def _check_head(self, head: AuditHead | None, last: int) -> None:
        assert self._mac is not None  # noqa: S101 - only called with the audit key
        if head is None:
            if self._mac.keyed_from <= last:
                raise _Broken(last + 1, "the vault's note of its last entry is missing")
            return
        if not macs_equal(head_mac(self._mac.key, head.seq, head.hash), head.mac):
            raise _Broken(head.seq, "the vault's note of its last entry was altered")
        if head.seq > last:
            raise _Broken(
                last + 1,
                f"entry {last + 1} is missing: the trail ends at entry {last} but the vault"
                f" recorded entries up to {head.seq} (cut off)",
            )
        if self._hash_at.get(head.seq) != head.hash or self._last_keyed > head.seq:
            raise _Broken(head.seq, "the vault's note of its last entry does not match the trail")

    def _unproven_from(self) -> int:
        """The first entry no verified checkpoint covers."""
        if self._signed_through is not None:
            return self._signed_through + 1
        return self._first or 1

    # -- checkpoints --------------------------------------------------------------

    def _signature_holds(self, checkpoint: Checkpoint) -> bool:
        certificate = self._certificates.get(checkpoint.thumbprint)
        if certificate is None or certificate.gateway_id != self._gateway_id:
            return False
        message = checkpoint_message(
            self._gateway_id, checkpoint.seq, checkpoint.head, checkpoint.at, checkpoint.reason
        )
        return certificate.verifies(message, checkpoint.signature)

    def _verified(self, checkpoint: Checkpoint) -> None:
        self._verified_checkpoints += 1
        if checkpoint.seq >= (self._signed_through or 0):
            self._signed_through, self._signed_at = checkpoint.seq, checkpoint.at

    def _report(self, bad_seq: int | None, problem: str | None) -> TrailReport:
        return TrailReport(
            ok=bad_seq is None,
            entries=self._entries,
            first_seq=self._first,
            last_seq=self._last,
            checkpoints=self._verified_checkpoints,
            signed_through=self._signed_through,
            signed_at=self._signed_at,
            unkeyed=self._unkeyed,
            first_bad_seq=bad_seq,
            problem=problem,
        )
