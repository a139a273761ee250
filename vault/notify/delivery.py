"""Delivering the queued events to each sink, in order, retried, without holding the vault.

Each sink has a place in the queue (``notify_deliveries``): every event up to
``through_event`` is delivered or given up, and the next one has had
``attempts`` tries, the first failed one at ``first_failed_at``, the next due
at ``next_attempt_at``.  A sink takes its events in order: a later event waits
until the earlier one is delivered or given up.

One step per event and sink, never holding the write lock over the network:

1. claim (one write): the sink's next event, if its attempt is due and no
   other process claimed it (``claimed_until``); checked against its audit
   entry (a queued row a database writer added or changed is refused);
2. send (no transaction): the webhook or the SMTP server, bounded by timeouts;
3. record (another write): delivered (``notify.delivered``, the place moves
   on), retried later (exponential backoff with jitter; a ``Retry-After`` is
   honoured within ``MAX_DELAY``), or given up (``notify.failed``, the place
   moves on) when refused or once ``GIVE_UP_AFTER`` has passed since the first
   failure.

In a cluster the member holding the ``notify.delivery`` lease delivers, and
its claims and records are fenced by it (``vault.cluster.lease``).  A claim
lasts ``CLAIM`` and outlives any one attempt, so ``gwvault notify deliver``
beside a running server never sends the same event twice at once.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_keys.errors import IntegrityError, VaultError
from vault.access.row_seal import TamperedRowError, record_refusal
from vault.cluster.lease import Lease, LeaseLostError, acquire, check_fence
from vault.format.audit_chain import AuditEntry, canonical_json
from vault.format.strict_json import parse_json_object
from vault.gateway import Gateway
from vault.notify.email_sink import event_message, send_email
from vault.notify.outcome import Delivered, Outcome, Refused, Retry
from vault.notify.sink_config import WebhookConfig
from vault.notify.sinks import Sink, SinkService
from vault.notify.webhook import post_event, signed_headers
from vault.proxy.loading import load_proxy
from vault.proxy.settings import ProxySettings

LEASE = "notify.delivery"
LEASE_TTL_MS = 120_000
CLAIM = datetime.timedelta(minutes=2)
FIRST_DELAY = 30.0
MAX_DELAY = 3600.0
GIVE_UP_AFTER = datetime.timedelta(hours=24)
MAX_PER_SINK = 100
"""Events one pass hands a sink at most: the rest wait for the next pass, so one
busy sink cannot keep the loop from the others for long."""
DELIVERED, FAILED, TESTED = "notify.delivered", "notify.failed", "notify.tested"


@dataclass(frozen=True)
class QueuedEvent:
    id: int
    kind: str
    body: bytes  # canonical JSON, checked against its audit entry

    @property
    def facts(self) -> dict[str, Any]:
        return parse_json_object(self.body.decode("utf-8"))


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "retrying": self.retrying, "failed": self.failed,
                "errors": list(self.errors)}  # fmt: skip


def deliver_due(gateway: Gateway) -> DeliveryReport:
    """One pass: every sink gets its due events, in order (``LeaseLostError`` in a
    cluster while another member delivers)."""
    report = DeliveryReport()
    try:
        proxy = load_proxy(gateway)  # once a pass; a refused row is recorded by the check
    except TamperedRowError as e:
        report.errors.append(str(e))
        return report  # nothing goes direct past the admin's proxy
    lease = None
    if gateway.member_id is not None:
        gateway.check_standing()
        lease = acquire(gateway.store, LEASE, gateway.member_id, LEASE_TTL_MS)
    for sink_id in [r["sink_id"] for r in gateway.store.rows(
        "SELECT sink_id FROM notify_deliveries ORDER BY sink_id", []
    )]:  # fmt: skip
        for _ in range(MAX_PER_SINK):
            try:
                claimed = _claim(gateway, sink_id, lease)
                if claimed is None:
                    break
                if not isinstance(claimed, _Claim):
                    report.failed += 1  # a tampered event, refused and passed
                    continue
                sink, event = claimed.sink, claimed.event
                outcome = send(gateway, sink, event, claimed.service, proxy)
                _record(gateway, sink, event, outcome, lease=lease, report=report)
            except TamperedRowError as e:
                record_refusal(gateway.audit, e)
                report.errors.append(str(e))
                break
            except LeaseLostError:
                raise
            except VaultError as e:  # this sink's trouble (a key that does not unwrap)
                report.errors.append(str(e))
                break
            if isinstance(outcome, Retry):
                break  # the later events wait behind this one
    return report


def send(
    gateway: Gateway, sink: Sink, event: QueuedEvent, service: SinkService, proxy: ProxySettings
) -> Outcome:
    """One attempt to hand ``event`` to ``sink`` (outside any transaction); a webhook
    goes through ``proxy`` when it routes the host (SMTP never does)."""
    secret = service.secret_of(sink)
    delivery = f"{gateway.gateway_id}:{event.id}"
    if isinstance(sink.config, WebhookConfig):
        if secret is None:
            raise IntegrityError(f"the webhook sink {sink.name} has lost its key")
        stamp = int(gateway.context.clock().timestamp())
        headers = signed_headers(event.kind, delivery, stamp, event.body, secret)
        return post_event(sink.config, headers, event.body, proxy)
    return send_email(sink.config, secret, event_message(sink.config, event.facts, delivery))


def send_test_event(gateway: Gateway, service: SinkService, name: str) -> Outcome:
    """Send a ``notify.test`` event to one sink now, once (not queued, not retried)."""
    sink = service.sink(name)
    at = gateway.context.now_iso()
    seq = gateway.audit.record(TESTED, name, sink_id=sink.id)
    body = {"kind": "notify.test", "credential": None, "at": at, "audit_seq": seq,
            "gateway_id": gateway.gateway_id, "details": {"sink": name}}  # fmt: skip
    event = QueuedEvent(0, "notify.test", canonical_json(body).encode())
    outcome = send(gateway, sink, event, service, load_proxy(gateway))
    gateway.audit.record(
        DELIVERED if isinstance(outcome, Delivered) else FAILED, name,
        "ok" if isinstance(outcome, Delivered) else "failed", sink_id=sink.id, test=True,
        reason=outcome.reason,
    )  # fmt: skip
    return outcome


def backoff_seconds(attempts: int, jitter: float, retry_after: float | None = None) -> float:
    """The wait before attempt ``attempts + 1``: doubling from ``FIRST_DELAY`` up to
    ``MAX_DELAY``, the last half of it random (``jitter`` in [0, 1]), so sinks
    that failed together do not retry together.  A server's ``Retry-After`` wins
    within 1 s .. ``MAX_DELAY``."""
    if retry_after is not None:
        return min(max(retry_after, 1.0), MAX_DELAY)
    ceiling = min(MAX_DELAY, FIRST_DELAY * float(2 ** min(max(attempts - 1, 0), 20)))
    return ceiling / 2 + ceiling / 2 * jitter


@dataclass(frozen=True)
class _Claim:
    sink: Sink
    event: QueuedEvent
    service: SinkService


_SKIPPED: Literal["skipped"] = "skipped"


def _claim(
    gateway: Gateway, sink_id: str, lease: Lease | None
) -> _Claim | Literal["skipped"] | None:
    """The sink's next due event, claimed; None when none is due; ``_SKIPPED``
    when the next one was refused as tampered (the sink moves past it)."""
    store, now = gateway.store, gateway.context.clock()
    service = SinkService(gateway)
    with store.write():
        if lease is not None:
            check_fence(store, lease, LEASE_TTL_MS)
        rows = store.rows("SELECT * FROM notify_deliveries WHERE sink_id = ?", [sink_id])
        if (
            not rows
            or _later(rows[0]["next_attempt_at"], now)
            or _later(rows[0]["claimed_until"], now)
        ):
            return None
        events = store.rows(
            "SELECT id, kind, target, at, body FROM notify_events WHERE id > ? ORDER BY id LIMIT 1",
            [int(rows[0]["through_event"])],
        )
        if not events:
            return None
        sink = service.checked_by_id(sink_id)
        if sink is None:
            return None
        try:
            event = _checked_event(gateway, events[0])
        except TamperedRowError as e:
            store.execute(
                "UPDATE notify_deliveries SET through_event = ? WHERE sink_id = ?",
                [int(events[0]["id"]), sink_id],
            )
            record_refusal(gateway.audit, e)
            return _SKIPPED
        store.execute(
            "UPDATE notify_deliveries SET claimed_until = ? WHERE sink_id = ?",
            [_iso(now + CLAIM), sink_id],
        )
    return _Claim(sink, event, service)


def _checked_event(gateway: Gateway, row: dict[str, Any]) -> QueuedEvent:
    """The queued row, if its audit entry (MACed) says the same; ``TamperedRowError``
    otherwise: a database writer must not make the vault sign news of its own."""
    try:
        body = parse_json_object(row["body"])
        found = gateway.rows.audited_entry(int(body["audit_seq"]))
        if found is None or not _vouched(gateway, row, body, *found):
            raise ValueError("no audit entry says this")
    except (ValueError, KeyError, TypeError, IntegrityError) as e:  # a bad entry too
        raise TamperedRowError("notify_events", row["id"]) from e
    return QueuedEvent(int(row["id"]), str(row["kind"]), str(row["body"]).encode())


def _vouched(
    gateway: Gateway, row: dict[str, Any], body: dict[str, Any], entry: AuditEntry,
    details: dict[str, Any],
) -> bool:  # fmt: skip
    """Whether the MACed ``entry`` says what the queued ``row`` and its ``body`` say."""
    return (
        entry.mac is not None
        and entry.action == row["kind"] == body.get("kind")
        and entry.target == row["target"] == body.get("credential")
        and entry.at == row["at"] == body.get("at")
        and body.get("gateway_id") == gateway.gateway_id
        and isinstance(body.get("details"), dict)
        and all(details.get(key) == value for key, value in body["details"].items())
        and canonical_json(body) == row["body"]
    )


def _record(
    gateway: Gateway,
    sink: Sink,
    event: QueuedEvent,
    outcome: Outcome,
    *,
    lease: Lease | None,
    report: DeliveryReport,
) -> None:
    store, now = gateway.store, gateway.context.clock()
    with store.write():
        if lease is not None:
            check_fence(store, lease, LEASE_TTL_MS)
        rows = store.rows("SELECT * FROM notify_deliveries WHERE sink_id = ?", [sink.id])
        if not rows or int(rows[0]["through_event"]) >= event.id:
            return  # the sink was removed, or another pass recorded this event
        row = rows[0]
        first_failed = _parsed(row["first_failed_at"]) or now
        credential = event.facts.get("credential")
        credential = credential if isinstance(credential, str) else None
        if isinstance(outcome, Retry) and now - first_failed < GIVE_UP_AFTER:
            attempts = int(row["attempts"]) + 1
            jitter = int.from_bytes(gateway.context.random(2), "big") / 0xFFFF
            wait = datetime.timedelta(seconds=backoff_seconds(attempts, jitter, outcome.after))
            store.execute(
                "UPDATE notify_deliveries SET attempts = ?, first_failed_at = ?,"
                " next_attempt_at = ?, claimed_until = NULL, last_error = ? WHERE sink_id = ?",
                [attempts, _iso(first_failed), _iso(now + wait), outcome.reason[:200], sink.id],
            )
            report.retrying += 1
            return
        store.execute(
            "UPDATE notify_deliveries SET through_event = ?, attempts = 0, first_failed_at = NULL,"
            " next_attempt_at = NULL, claimed_until = NULL, last_error = NULL WHERE sink_id = ?",
            [event.id, sink.id],
        )
        if isinstance(outcome, Delivered):
            gateway.audit.record(DELIVERED, sink.name, sink_id=sink.id, event_id=event.id,
                                 kind=event.kind, credential=credential)  # fmt: skip
            report.delivered += 1
            return
        given_up = "refused" if isinstance(outcome, Refused) else "gave up after 24 h"
        gateway.audit.record(FAILED, sink.name, "failed", sink_id=sink.id, event_id=event.id,
                             kind=event.kind, credential=credential,
                             attempts=int(row["attempts"]) + 1,
                             reason=f"{given_up}: {outcome.reason}"[:200])  # fmt: skip
        report.failed += 1


def queue_places(gateway: Gateway) -> dict[str, dict[str, Any]]:
    """Each sink's place in the queue by sink id, for ``notify list``."""
    rows = gateway.store.rows(
        "SELECT d.sink_id, d.attempts, d.next_attempt_at, d.last_error,"
        " (SELECT count(*) FROM notify_events e WHERE e.id > d.through_event) AS waiting"
        " FROM notify_deliveries d",
        [],
    )
    return {
        str(row["sink_id"]): {"waiting": int(row["waiting"]), "attempts": int(row["attempts"]),
                              "next_attempt_at": row["next_attempt_at"],
                              "last_error": row["last_error"]}
        for row in rows
    }  # fmt: skip


def _later(value: str | None, now: datetime.datetime) -> bool:
    moment = _parsed(value)
    return moment is not None and moment > now


def _parsed(value: str | None) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError as e:
        raise VaultError("a notification delivery row holds a time gwvault never wrote") from e
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds")
