"""The one audit interface of the service layer: appending to the trail.

Every lifecycle step is recorded through ``AuditTrail.record`` inside the same
transaction as the change, so the change and its record commit together; if
the record cannot be written, or cannot be MACed, the change fails (fail
closed).  Entries carry identifiers, never contents.

Each entry is chained to the one before and MACed with the audit key (a random
key wrapped by the GMK, created with the vault); every ``CHECKPOINT_INTERVAL``
entries the gateway key signs the chain head (``vault.format.audit_chain``).  The
vault also keeps a MACed note of its last MACed entry (its number, digest, time
and the gateway epoch), so cutting entries off the end of the table is
detected even between checkpoints.  A note put back together with the table
from an earlier copy is not (nothing inside the data dir can tell an old copy
from the present one); what the note binds then shows as time going back
between two runs of ``audit verify`` (threat T-AU-12).

When the gateway key pair changes, the old and the new key both sign a
rotation record at the entry that says so, which is the only way a verifier
comes to trust a certificate other than the one it was given (T-AU-13).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal, Protocol, TypeVar

from agent_keys.errors import IntegrityError, StorageError
from agent_keys.gateway_identity import GatewayCertificate, GatewayPrivateKey
from agent_keys.keywrap import KEY_BYTES
from agent_keys.master_key import MasterKey
from agent_keys.secret import Secret
from vault.audit.coalesce import COALESCER, Coalesced
from vault.context import RequestContext, new_request_id
from vault.format.audit_chain import (
    CHECKPOINT_INTERVAL,
    UNKEYED_ACTIONS,
    AuditEntry,
    AuditFields,
    AuditHead,
    Checkpoint,
    MacKey,
    Rotation,
    canonical_json,
    checkpoint_message,
    entry_digest,
    entry_mac,
    genesis,
    head_mac,
    rotation_message,
)
from vault.format.strict_json import parse_json_object
from vault.store.vault_store import AUDIT_KEY_PENDING, VaultStore

Outcome = Literal["ok", "failed", "refused"]
DetailValue = str | int | bool | None

_HEAD_SETTING = "audit_head"
T = TypeVar("T")
_MAX_EPOCH = 2**63 - 1


class AuditKeyHolder(Protocol):
    """What the trail needs from the opened gateway to MAC entries and sign checkpoints."""

    @property
    def gateway_id(self) -> str: ...

    @property
    def master_key(self) -> MasterKey: ...

    def master_key_for(self, version: int) -> MasterKey: ...

    def checkpoint_signer(self) -> tuple[GatewayPrivateKey, GatewayCertificate]: ...

    def cached_fact(self, name: str, load: Callable[[], T]) -> T: ...


def audit_key_context(gateway_id: str, keyed_from: int) -> bytes:
    """What the wrapped audit key is bound to, so ``keyed_from`` cannot be moved."""
    return f"gwvault/audit-key/v1|{gateway_id}|{keyed_from}".encode()


class AuditTrail:
    """Appends lifecycle events for one request to the vault's audit trail."""

    def __init__(self, store: VaultStore, context: RequestContext, keys: AuditKeyHolder) -> None:
        self._store = store
        self._context = context
        self._keys = keys
        self._unwrapped: tuple[bytes, Secret] | None = None  # (wrapped, key) of the last unwrap

    def acting_as(self, context: RequestContext) -> AuditTrail:
        """This trail writing entries as ``context`` (the same vault and keys,
        and the audit key this one already unwrapped)."""
        other = AuditTrail(self._store, context, self._keys)
        other._unwrapped = self._unwrapped
        return other

    def record(
        self,
        action: str,
        target: str | None,
        outcome: Outcome = "ok",
        **details: DetailValue,
    ) -> int:
        """Append one MACed event; joins the caller's write transaction or opens one.

        Raises ``StorageError`` (or the keystore's error) when it cannot be
        written, which aborts the enclosing change.
        """
        with self._store.write():
            mac_key = self.mac_key()
            seq, digest = self._append(action, target, outcome, details, mac_key.key)
            if seq - self._store.last_audit_checkpoint_seq() >= CHECKPOINT_INTERVAL:
                self._sign(seq, digest, "interval")
        return seq

    def record_unauthenticated(
        self,
        action: str,
        target: str | None,
        outcome: Outcome,
        **details: DetailValue,
    ) -> int | None:
        """``record`` an event an anonymous client can cause at will, rate-limited
        per client address (vault.audit.coalesce): None when it was only counted.

        Outside a write, first writes the counts of windows that have closed.
        From the CLI (no client address) every event is recorded.
        """
        client = self._context.client
        if client is None:
            return self.record(action, target, outcome, **details)
        now = self._context.clock()
        gateway_id = self._keys.gateway_id
        if not self._store.in_write:
            self.write_coalesced(COALESCER.take(gateway_id, now))
        if COALESCER.admit(gateway_id, action, client, outcome, now):
            return self.record(action, target, outcome, **details)
        return None

    def write_coalesced(self, taken: list[Coalesced]) -> None:
        """One entry per window of counted events, as the anonymous client's
        (its own write; counts go back to the coalescer if it fails)."""
        if not taken:
            return
        context = replace(self._context, actor="anonymous", channel="web",
                          request_id=new_request_id())  # fmt: skip
        trail = AuditTrail(self._store, context, self._keys)
        try:
            with self._store.write():
                for item in taken:
                    trail.record(
                        item.action, None, item.outcome,  # type: ignore[arg-type]
                        coalesced=item.count, client=item.client,
                        window_start=item.window_start, window_end=item.window_end,
                    )  # fmt: skip
        except BaseException:
            COALESCER.give_back(self._keys.gateway_id, taken)
            raise

    def record_unkeyed(
        self, action: str, target: str | None, outcome: Outcome, **details: DetailValue
    ) -> int:
        """Append a failure to unlock, without a MAC (the key may be what is missing)."""
        if action not in UNKEYED_ACTIONS:
            raise ValueError(f"{action} must be recorded with a MAC")
        with self._store.write():
            return self._append(action, target, outcome, details, None)[0]

    def checkpoint(self, reason: Literal["export", "prune"], seq: int | None = None) -> Checkpoint:
        """Sign the chain head at ``seq`` (default: the last entry), inside the caller's write."""
        if not self._store.in_write:
            raise StorageError("a checkpoint must be signed inside a write")
        if seq is None:
            tail = self._store.audit_tail()
            if tail is None:
                raise StorageError("the audit trail is empty; there is nothing to sign")
            seq, digest = tail
        else:
            rows = self._store.rows("SELECT hash FROM audit_events WHERE seq = ?", [seq])
            if not rows:
                raise StorageError(f"the audit trail has no entry {seq} to sign")
            digest = bytes(rows[0]["hash"])
        return self._sign(seq, digest, reason)

    def mac_key(self) -> MacKey:
        """The audit key; made (under the current GMK) by a new or just-upgraded vault."""
        found = self.existing_mac_key()
        return found if found is not None else self._create_key()

    def existing_mac_key(self) -> MacKey | None:
        """The audit key, or None while a new or just-upgraded vault has none yet.

        Any other vault without one fails closed: its key was deleted, and
        making a new one would let a rewritten trail verify.
        """
        return self._keys.cached_fact("audit_mac_key", self._stored_mac_key)

    def _stored_mac_key(self) -> MacKey | None:
        rows = self._store.rows(
            "SELECT wrapped_key, gmk_version, keyed_from FROM audit_key WHERE id = 1", []
        )
        if not rows:
            if self._store.audit_tail() is None or self._store.setting(AUDIT_KEY_PENDING):
                return None
            raise IntegrityError(
                "the audit key is missing from the vault database: the audit trail was tampered"
                " with; restore the vault from a recovery bundle"
            )
        wrapped, keyed_from = bytes(rows[0]["wrapped_key"]), int(rows[0]["keyed_from"])
        if self._unwrapped is None or self._unwrapped[0] != wrapped:
            gmk = self._keys.master_key_for(int(rows[0]["gmk_version"]))
            try:
                key = gmk.unwrap(wrapped, audit_key_context(self._keys.gateway_id, keyed_from))
            except IntegrityError as e:
                raise IntegrityError(
                    "the audit key does not unwrap: its row in the vault database was altered"
                ) from e
            self._unwrapped = (wrapped, key)
        return MacKey(self._unwrapped[1], keyed_from)

    def head(self) -> AuditHead | None:
        """The vault's MACed note of its last MACed entry (version 2, or 1 from
        before the note bound its time and epoch)."""
        text = self._store.setting(_HEAD_SETTING)
        if text is None:
            return None
        try:
            note = parse_json_object(text)
            head = AuditHead(
                int(note["seq"]), bytes.fromhex(note["hash"]), bytes.fromhex(note["mac"])
            )
            if note.get("v") == 2:
                at, epoch = note["at"], note["epoch"]
                if not isinstance(at, str) or type(epoch) is not int or not 0 < epoch <= _MAX_EPOCH:
                    raise ValueError("not a version-2 note")
                head = AuditHead(head.seq, head.hash, head.mac, at, epoch)
            elif "v" in note:
                raise ValueError("an unknown note version")
            return head
        except (ValueError, KeyError, TypeError, AttributeError):
            return AuditHead(0, b"", b"")  # unreadable: fails the MAC check, reported as altered

    def epoch(self) -> int:
        """The gateway epoch (raised by each restore), as the vault's settings say."""
        text = self._store.setting("epoch")
        if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
            raise StorageError("the vault database's epoch setting is damaged")
        return int(text)

    def sign_rotation(
        self,
        seq: int,
        old: tuple[GatewayPrivateKey, GatewayCertificate],
        new: tuple[GatewayPrivateKey, GatewayCertificate],
    ) -> Rotation:
        """Have the old and the new key pair both sign that signing moves from
        one to the other at entry ``seq`` (the ``cert.rotated`` or
        ``cert.imported`` entry), inside the caller's write."""
        if not self._store.in_write:
            raise StorageError("a rotation record must be signed inside a write")
        rows = self._store.rows("SELECT hash FROM audit_events WHERE seq = ?", [seq])
        if not rows:
            raise StorageError(f"the audit trail has no entry {seq} to sign")
        head, at = bytes(rows[0]["hash"]), self._context.now_iso()
        (old_key, old_cert), (new_key, new_cert) = old, new
        message = rotation_message(
            self._keys.gateway_id, seq, head, at,
            from_thumbprint=old_cert.thumbprint, to_thumbprint=new_cert.thumbprint,
        )  # fmt: skip
        rotation = Rotation(
            seq=seq,
            head=head,
            at=at,
            from_thumbprint=old_cert.thumbprint,
            to_thumbprint=new_cert.thumbprint,
            from_signature=old_key.sign(message),
            to_signature=new_key.sign(message),
        )
        self._store.add_audit_rotation(
            rotation, old_cert.pem.decode("ascii"), new_cert.pem.decode("ascii")
        )
        return rotation

    # -- writing ------------------------------------------------------------------

    def _create_key(self) -> MacKey:
        with self._store.write():
            # The GMK first: a cluster member's standing check, on the way to it,
            # checks its row's seal, which needs this very key and makes it.
            gmk = self._keys.master_key
            made = self._stored_mac_key()
            if made is not None:
                return made
            tail = self._store.audit_tail()
            keyed_from = tail[0] + 1 if tail else 1
            key = Secret(self._context.random(KEY_BYTES))
            context = audit_key_context(self._keys.gateway_id, keyed_from)
            self._store.execute(
                "INSERT INTO audit_key (id, wrapped_key, gmk_version, keyed_from, created_at)"
                " VALUES (1, ?, ?, ?, ?)",
                [gmk.wrap(key, context, self._context.random), gmk.version, keyed_from,
                 self._context.now_iso()],
            )  # fmt: skip
            self._store.execute("DELETE FROM settings WHERE key = ?", [AUDIT_KEY_PENDING])
        return MacKey(key, keyed_from)

    def _append(
        self,
        action: str,
        target: str | None,
        outcome: Outcome,
        details: dict[str, DetailValue],
        mac_key: Secret | None,
    ) -> tuple[int, bytes]:
        context = self._context
        if context.claimed_sudo_user is not None:
            details = {**details, "sudo_user_claimed": context.claimed_sudo_user}
        if self._store.member_id is not None:
            # One trail for a whole cluster: each entry names the member that wrote it.
            details = {**details, "member": self._store.member_id}
        tail = self._store.audit_tail()
        seq, prev = (tail[0] + 1, tail[1]) if tail else (1, genesis(self._keys.gateway_id))
        fields = AuditFields(
            seq=seq,
            at=context.now_iso(),
            actor=context.actor,
            channel=context.channel,
            action=action,
            target=target,
            outcome=outcome,
            request_id=context.request_id,
            details=canonical_json(details),
        )
        digest = entry_digest(prev, fields)
        mac = entry_mac(mac_key, digest) if mac_key is not None else None
        self._store.append_audit(AuditEntry(**vars(fields), prev_hash=prev, hash=digest, mac=mac))
        if mac_key is not None:
            epoch = self.epoch()
            note_mac = head_mac(mac_key, seq, digest, fields.at, epoch)
            note = {"v": 2, "seq": seq, "hash": digest.hex(), "at": fields.at, "epoch": epoch,
                    "mac": note_mac.hex()}  # fmt: skip
            self._store.set_setting(_HEAD_SETTING, canonical_json(note))
        return seq, digest

    def _sign(self, seq: int, head: bytes, reason: str) -> Checkpoint:
        private_key, certificate = self._keys.checkpoint_signer()
        at = self._context.now_iso()
        checkpoint = Checkpoint(
            seq=seq,
            head=head,
            at=at,
            reason=reason,
            thumbprint=certificate.thumbprint,
            signature=private_key.sign(
                checkpoint_message(self._keys.gateway_id, seq, head, at, reason)
            ),
        )
        self._store.add_audit_checkpoint(checkpoint, certificate.pem.decode("ascii"))
        return checkpoint
