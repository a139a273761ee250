"""Which certificates a trail's verifier trusts, and for which entries.

It trusts the certificate it was given (the anchor: the auditor's, or the
vault's current one) and those that rotation records link to it, nothing else.
A rotation record (``vault.format.audit_chain.Rotation``) at entry S says that
the gateway key that signed up to S (``from``) handed over to the one that
signs from S on (``to``); both keys sign it, so it can be followed from either
end.  A trail's records form one chain, oldest first, each continuing from the
certificate the one before it rotated to.  When the anchor is on that chain,
every certificate on it is trusted, each only for its own stretch of entries:
a key that was rotated away from signs nothing after its rotation, even if it
leaks later.  A certificate found anywhere else (an export's header, an
``audit_signers`` row) verifies nothing (threat T-AU-13).

Pure: certificates and records in, verdicts out; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent_keys.gateway_identity import GatewayCertificate
from vault.format.audit_chain import Rotation, rotation_message

_END = 2**63  # past any entry's sequence number


@dataclass(frozen=True)
class BrokenRotation:
    """The first rotation record that does not hold, and why."""

    seq: int
    problem: str


class SignerTrust:
    """The certificates a verifier may accept signatures from, entry by entry."""

    def __init__(
        self,
        gateway_id: str,
        anchor: GatewayCertificate,
        certificates: Iterable[GatewayCertificate],
        rotations: Sequence[Rotation],
    ) -> None:
        # Keyed by each certificate's own thumbprint, never by what a row or a
        # line claims it is.
        self._pool = {c.thumbprint: c for c in certificates if c.gateway_id == gateway_id}
        self._pool[anchor.thumbprint] = anchor
        self.rotations = sorted(rotations, key=lambda r: r.seq)
        self.broken = self._first_broken(gateway_id)
        on_chain = {r.from_thumbprint for r in self.rotations} | {
            r.to_thumbprint for r in self.rotations
        }
        self.anchor_on_chain = self.broken is None and anchor.thumbprint in on_chain
        self._windows: dict[str, list[tuple[int, int]]] = (
            self._chain_windows() if self.anchor_on_chain else {anchor.thumbprint: [(1, _END)]}
        )

    def signer(self, thumbprint: str, seq: int) -> GatewayCertificate | None:
        """The certificate ``thumbprint`` names, if it is trusted to sign at entry ``seq``."""
        for first, last in self._windows.get(thumbprint, ()):
            if first <= seq <= last:
                return self._pool[thumbprint]
        return None

    def _first_broken(self, gateway_id: str) -> BrokenRotation | None:
        previous: Rotation | None = None
        for record in self.rotations:
            old = self._pool.get(record.from_thumbprint)
            new = self._pool.get(record.to_thumbprint)
            at = f"the rotation record at entry {record.seq}"
            if old is None or new is None:
                return BrokenRotation(
                    record.seq, f"{at} names a certificate of this gateway that the trail lacks"
                )
            if old is new:
                return BrokenRotation(record.seq, f"{at} rotates from a certificate to itself")
            message = rotation_message(
                gateway_id, record.seq, record.head, record.at,
                from_thumbprint=record.from_thumbprint, to_thumbprint=record.to_thumbprint,
            )  # fmt: skip
            if not (
                old.verifies(message, record.from_signature)
                and new.verifies(message, record.to_signature)
            ):
                return BrokenRotation(record.seq, f"{at} is not signed by both keys it names")
            if previous is not None and (
                record.seq <= previous.seq or record.from_thumbprint != previous.to_thumbprint
            ):
                return BrokenRotation(
                    record.seq,
                    f"{at} does not continue from the certificate that the one at entry"
                    f" {previous.seq} rotated to (a record was removed, or the keys forked)",
                )
            previous = record
        return None

    def _chain_windows(self) -> dict[str, list[tuple[int, int]]]:
        """Each certificate on the chain: the entries it may sign (both ends of a
        rotation may sign at the rotation's own entry)."""
        first = self.rotations[0]
        windows: dict[str, list[tuple[int, int]]] = {first.from_thumbprint: [(1, first.seq)]}
        ends = [r.seq for r in self.rotations[1:]] + [_END]
        for record, end in zip(self.rotations, ends, strict=True):
            windows.setdefault(record.to_thumbprint, []).append((record.seq, end))
        return windows
