"""Reading, verifying, exporting and pruning the audit trail (the auditor's side).

``AuditTrail`` (vault.audit.trail) appends; this service answers an auditor's
questions over what was appended: which events match a filter, one
credential's timeline, whether the trail verifies, an export an outsider can
verify, and retention (``prune``), which leaves a signed checkpoint where the
removed entries were so the rest still verifies.  Exporting and pruning are
themselves recorded.
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from agent_keys.errors import ConflictError, InvalidInputError, StorageError
from agent_keys.gateway_identity import GatewayCertificate
from vault.audit.export import ExportHeader, export_lines
from vault.audit.mark import MarkBook
from vault.audit.signer_trust import SignerTrust
from vault.audit.verify import TrailReport, TrailVerifier
from vault.format.audit_chain import PRUNED_ACTION, AuditEntry, AuditHead, Checkpoint
from vault.format.strict_json import parse_json_object
from vault.gateway import Gateway
from vault.names import check_datasource_name

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_ACTION = re.compile(r"[a-z0-9-]{1,32}(\.[a-z0-9-]{1,32})?(\.\*)?")
# Events about a credential (by its data-source name) rather than a user of the same name.
_CREDENTIAL_ACTIONS = "(action LIKE 'credential.%' OR action LIKE 'credentials.%'" \
    " OR action LIKE 'entry-link.%')"  # fmt: skip


@dataclass(frozen=True)
class AuditQuery:
    """A checked filter over the trail: newest first, ``limit`` at most."""

    credential: str | None = None
    action: str | None = None  # exact, or a prefix such as "credential.*"
    since: str | None = None  # ISO 8601 UTC, inclusive
    before_seq: int | None = None  # paging: entries older than this one
    after_seq: int | None = None  # paging back: the oldest entries newer than this one
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(
        cls,
        *,
        credential: str | None = None,
        action: str | None = None,
        since: str | None = None,
        before_seq: str | int | None = None,
        after_seq: str | int | None = None,
        limit: str | int | None = None,
    ) -> AuditQuery:
        """Check a filter from the CLI or a query string; ``InvalidInputError`` if bad."""
        if before_seq is not None and after_seq is not None:
            raise InvalidInputError("give before or after, not both")
        if credential is not None:
            check_datasource_name(credential)
        if action is not None and not _ACTION.fullmatch(action):
            raise InvalidInputError(
                "an action is a name such as credential.created, or a prefix such as credential.*"
            )
        return cls(
            credential=credential,
            action=action,
            since=parse_utc_time(since, "since").isoformat(timespec="seconds") if since else None,
            before_seq=bounded_int(before_seq, "before", 1, 2**63 - 1),
            after_seq=bounded_int(after_seq, "after", 0, 2**63 - 1),
            limit=bounded_int(limit, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT,
        )


@dataclass(frozen=True)
class SignedExport:
    """An export recorded and signed (``AuditLog.sign_export``), its lines still to read."""

    closing: Checkpoint
    exported_at: str
    first_seq: int | None  # the oldest entry when it was signed (a prune moves it)


@dataclass(frozen=True)
class PruneResult:
    through_seq: int  # the last entry removed (0: none)
    removed: int
    checkpoint: Checkpoint | None


class AuditLog:
    """The audit trail of one opened gateway, as auditors and admins see it."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._store = gateway.store

    def find(self, query: AuditQuery) -> list[AuditEntry]:
        clauses: list[str] = ["1 = 1"]
        params: list[str | int] = []
        if query.credential is not None:
            clauses.append(f"target = ? AND {_CREDENTIAL_ACTIONS}")
            params.append(query.credential)
        if query.action is not None:
            actions = self._actions(query.action)
            if actions == []:
                return []  # no entry has such an action
            if actions is None:
                clauses.append("action LIKE ?")  # the pattern admits no % or _
                params.append(query.action[:-1] + "%")
            else:
                clauses.append(f"action IN ({', '.join('?' * len(actions))})")
                params.extend(actions)
        if query.since is not None:
            clauses.append("at >= ?")
            params.append(query.since)
        if query.before_seq is not None:
            clauses.append("seq < ?")
            params.append(query.before_seq)
        if query.after_seq is not None:
            # The oldest ``limit`` entries after it, read upwards, shown newest first.
            clauses.append("seq > ?")
            params.append(query.after_seq)
            found = self._store.find_audit(
                " AND ".join(clauses), params, query.limit, oldest_first=True
            )
            return found[::-1]
        return self._store.find_audit(" AND ".join(clauses), params, query.limit)

    def _actions(self, action: str) -> list[str] | None:
        """The actions a filter names: itself, or those a prefix ("credential.*")
        matches in the trail (None: too many to list, match with LIKE).  An IN list
        is read from the (action, seq) index newest first, where LIKE scanned the
        whole trail for a rare prefix (0.1 s at 1M entries)."""
        if not action.endswith(".*"):
            return [action]
        return self._store.audit_actions_with_prefix(action[:-1])

    def verify(self) -> TrailReport:
        """Check the whole trail: chain, MACs, signed statements and the end of the trail.

        Signatures count when they are the current certificate's, or one that
        rotation records link to it (T-AU-13); the ``audit_signers`` table only
        says which certificate a thumbprint is.
        """
        return self.check()[0]

    def check(self, anchor: AuditEntry | None = None) -> tuple[TrailReport, AuditHead | None]:
        """``verify``, and the head note it found to hold; given ``anchor`` (an
        entry a full check verified, vault.audit.incremental), only the entries
        and signed statements after it.  Inside the caller's read, if any."""
        gateway, trail = self._gateway, self._gateway.audit
        after = anchor.seq if anchor is not None else 0
        with self._store.reading():
            mac_key = trail.existing_mac_key()  # None: no entry has a MAC yet
            trust = SignerTrust(
                gateway.gateway_id,
                gateway.certificate(),
                self._signers(),
                self._store.audit_rotations(),
            )
            verifier = TrailVerifier(
                gateway.gateway_id,
                self._store.audit_checkpoints(after),
                trust,
                mac_key,
                keyless_vault=mac_key is None,
            )
            report = verifier.verify(
                self._store.audit_entries(after),
                head=trail.head(),
                epoch=trail.epoch(),
                anchor=anchor,
            )
        return report, verifier.verified_head

    def export(self, write: Callable[[Iterable[bytes]], object]) -> Checkpoint:
        """Record the export, sign a closing checkpoint and hand the lines to ``write``.

        One transaction: if ``write`` fails, the export is not recorded either.
        """
        with self._store.write():
            signed = self.sign_export()
            write(self._export_lines(signed))
        return signed.closing

    def sign_export(self) -> SignedExport:
        """Record an export and sign its closing checkpoint, inside the caller's
        write (or one of its own); ``read_export`` then gives its lines."""
        gateway, store = self._gateway, self._store
        with store.write():
            gateway.audit.record("audit.exported", gateway.gateway_id)
            closing = gateway.audit.checkpoint("export")
            return SignedExport(closing, gateway.context.now_iso(), self._first_seq())

    def read_export(self, signed: SignedExport, write: Callable[[Iterable[bytes]], object]) -> None:
        """Hand the lines of a committed ``sign_export`` to ``write``, read from one
        snapshot outside any write: a server's export of a large trail takes seconds
        (10 s at 100,000 entries), and every change waits on the write lock, 10 s
        at most on SQLite.  Entries and statements after the closing checkpoint
        (written meanwhile) are left out.  ``ConflictError`` if a prune removed
        entries after the export was signed: the file would not verify.
        """
        if self._store.in_write:
            raise StorageError("read an export outside the write that signed it")
        with self._store.reading():
            if self._first_seq() != signed.first_seq:
                raise ConflictError("the trail was pruned during the export; export it again")
            write(self._export_lines(signed))

    def _export_lines(self, signed: SignedExport) -> Iterator[bytes]:
        gateway, store, through = self._gateway, self._store, signed.closing.seq
        header = ExportHeader(
            gateway_id=gateway.gateway_id,
            gateway_name=gateway.name,
            exported_at=signed.exported_at,
            exported_by=gateway.context.actor,
            certificates=tuple(store.audit_signers().values()),
        )
        return export_lines(
            header,
            itertools.takewhile(lambda entry: entry.seq <= through, store.audit_entries()),
            [c for c in store.audit_checkpoints() if c.seq <= through],
            [r for r in store.audit_rotations() if r.seq <= through],
        )

    def _first_seq(self) -> int | None:
        first = self._store.rows("SELECT min(seq) AS first FROM audit_events", [])[0]["first"]
        return None if first is None else int(first)

    def prune(self, before: datetime.datetime) -> PruneResult:
        """Remove the oldest entries written before ``before``, leaving a signed
        checkpoint where they were; recorded as ``audit.pruned``."""
        gateway, store = self._gateway, self._store
        now = gateway.context.clock()
        if before > now:
            raise InvalidInputError("--before is in the future; nothing was pruned")
        cutoff = before.astimezone(datetime.UTC).isoformat(timespec="seconds")
        with store.write():
            # Only a prefix: the trail must stay one unbroken chain.
            rows = store.rows("SELECT min(seq) AS kept FROM audit_events WHERE at >= ?", [cutoff])
            tail = store.audit_tail()
            through = (rows[0]["kept"] or (tail[0] + 1 if tail else 1)) - 1
            # Never past an entry an audit sink has not been sent yet: the trail
            # is a buffer sink's queue (vault.audit.sinks.delivery).
            unsent = store.rows("SELECT min(through_seq) AS s FROM audit_sink_places", [])
            if unsent[0]["s"] is not None:
                through = min(through, int(unsent[0]["s"]))
            first = store.rows("SELECT min(seq) AS first FROM audit_events", [])[0]["first"]
            checkpoint, removed = None, 0
            if first is not None and through >= first:
                checkpoint = gateway.audit.checkpoint("prune", through)
                removed = store.prune_audit(through)
                MarkBook(store, gateway.audit, gateway.gateway_id).drop_if_pruned(through)
            gateway.audit.record(
                PRUNED_ACTION, gateway.gateway_id, before=cutoff, through_seq=through,
                removed=removed,
            )  # fmt: skip
        return PruneResult(through if removed else 0, removed, checkpoint)

    def _signers(self) -> list[GatewayCertificate]:
        signers: list[GatewayCertificate] = []
        for pem in self._store.audit_signers().values():
            try:
                signers.append(GatewayCertificate.from_pem(pem.encode("ascii")))
            except (InvalidInputError, UnicodeEncodeError):
                continue  # an altered signer row: what it signed then fails to verify
        return signers


def parse_utc_time(text: str, what: str) -> datetime.datetime:
    """An ISO 8601 date or time; without an offset it is taken as UTC."""
    try:
        value = datetime.datetime.fromisoformat(text)
    except (ValueError, TypeError) as e:
        raise InvalidInputError(
            f"{what} must be an ISO 8601 date or time, such as 2026-11-01 or"
            " 2026-11-01T09:30:00+01:00"
        ) from e
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError as e:  # 9999-12-31T23:59-01:00 is past the last UTC datetime
        raise InvalidInputError(f"{what} is outside the years 1 to 9999 in UTC") from e


def bounded_int(value: str | int | None, what: str, low: int, high: int) -> int | None:
    """``value`` (ASCII digits or an int) if in ``low..high``; else ``InvalidInputError``."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 19:
            raise InvalidInputError(f"{what} must be a whole number from {low} to {high}")
        value = int(value)
    if isinstance(value, bool) or not low <= value <= high:
        raise InvalidInputError(f"{what} must be a whole number from {low} to {high}")
    return value


def entry_view(entry: AuditEntry) -> dict[str, object]:
    """An entry as the CLI's --json and the API show it (no chain bytes)."""
    try:
        details: object = parse_json_object(entry.details)
    except ValueError:
        details = entry.details  # not JSON: shown as stored (the verifier will object)
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "channel": entry.channel,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "request_id": entry.request_id,
        "details": details,
        "keyed": entry.mac is not None,
    }
