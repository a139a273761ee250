"""The admin's notification sinks: add, list, remove, and the checked sink a delivery uses.

A sink row is sealed (``vault.access.row_seal``: id, name, kind, configuration,
creation time), so someone who can write the database but holds no key cannot
point notifications at a server of theirs or swap the CA its certificate is
checked against; a removed sink's row put back is refused too (the trail's
newest ``notify.sink-*`` entry for it says removed).  The webhook's HMAC key
and the SMTP password are wrapped by the GMK with a context naming the sink's
id and name (``sink_key_context``): a wrapped key moved to another row does
not unwrap.  A GMK rotation rewraps them with the other single-row keys.

A new sink starts after the newest queued event: it receives what happens
from now on, not the history (which the audit trail holds).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import ConflictError, InvalidInputError, NotFoundError
from agent_keys.secret import Secret
from vault.access.admin_write import admin_write
from vault.access.callers import Caller
from vault.access.row_seal import TamperedRowError
from vault.gateway import Gateway
from vault.notify.sink_config import (
    EmailConfig,
    SinkConfig,
    SinkKind,
    WebhookConfig,
    check_sink_name,
    config_from_text,
    config_text,
    sink_key_context,
)

ADDED, REMOVED = "notify.sink-added", "notify.sink-removed"
MAX_SINKS = 32
_GENERATED_SECRET_BYTES = 32


@dataclass(frozen=True)
class Sink:
    """A sink as stored and checked (never its secret)."""

    id: str
    name: str
    config: SinkConfig
    created_at: str
    has_secret: bool

    @property
    def kind(self) -> SinkKind:
        return _kind(self.config)

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "created_at": self.created_at,
                **self.config.facts(), "has_secret": self.has_secret}  # fmt: skip


@dataclass(frozen=True)
class AddedSink:
    sink: Sink
    generated_secret: Secret | None  # the webhook key gwvault made, shown once


class SinkService:
    """Manage the sinks; ``caller`` is a web or API caller (None: the CLI's operator)."""

    def __init__(self, gateway: Gateway, caller: Caller | None = None) -> None:
        self._gateway = gateway
        self._caller = caller

    def add(self, name: str, config: SinkConfig, secret: Secret | None) -> AddedSink:
        """Store a sink; a webhook without ``secret`` gets a generated HMAC key."""
        check_sink_name(name)
        generated = None
        if isinstance(config, WebhookConfig) and secret is None:
            generated = secret = Secret(
                self._gateway.context.random(_GENERATED_SECRET_BYTES).hex().encode()
            )
        if isinstance(config, EmailConfig) and (secret is None) != (config.user is None):
            raise InvalidInputError("an SMTP user name and its password go together")
        gateway, store = self._gateway, self._gateway.store
        sink_id, now = (
            str(uuid.UUID(bytes=gateway.context.random(16), version=4)),
            gateway.context.now_iso(),
        )
        with self._deciding(name):
            if store.rows("SELECT 1 FROM notify_sinks WHERE name = ?", [name]):
                raise ConflictError(f"a sink named {name} exists; remove it first")
            if int(store.rows("SELECT count(*) AS n FROM notify_sinks", [])[0]["n"]) >= MAX_SINKS:
                raise ConflictError(f"a vault has at most {MAX_SINKS} sinks")
            gmk = gateway.master_key
            wrapped = (
                None
                if secret is None
                else gmk.wrap(secret, sink_key_context(gateway.gateway_id, sink_id, name),
                              gateway.context.random)
            )  # fmt: skip
            row = {"id": sink_id, "name": name, "kind": _kind(config),
                   "config": config_text(config), "created_at": now}  # fmt: skip
            store.execute(
                "INSERT INTO notify_sinks (id, name, kind, config, wrapped_key, gmk_version,"
                " created_at, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [sink_id, name, row["kind"], row["config"], wrapped,
                 None if wrapped is None else gmk.version, now,
                 gateway.rows.sealed("notify_sinks", row)],
            )  # fmt: skip
            # From now on: the events queued before it are history, not news.
            store.execute(
                "INSERT INTO notify_deliveries (sink_id, through_event) VALUES"
                " (?, (SELECT coalesce(max(id), 0) FROM notify_events))",
                [sink_id],
            )
            gateway.audit.record(ADDED, name, sink_id=sink_id, kind=row["kind"],
                                 destination=_destination(config))  # fmt: skip
        return AddedSink(Sink(sink_id, name, config, now, secret is not None), generated)

    def sinks(self) -> list[Sink]:
        """Every sink, checked, by name."""
        with self._deciding(None):
            return [self._checked(row) for row in self._rows("1 = 1", [])]

    def sink(self, name: str) -> Sink:
        with self._deciding(name):
            return self._sink(name)

    def remove(self, name: str) -> None:
        """Remove a sink and its place in the queue; its wrapped secret goes with the row."""
        store = self._gateway.store
        with self._deciding(name):
            sink = self._sink(name)
            store.execute("DELETE FROM notify_deliveries WHERE sink_id = ?", [sink.id])
            store.execute("DELETE FROM notify_sinks WHERE id = ?", [sink.id])
            self._gateway.audit.record(REMOVED, name, sink_id=sink.id, kind=sink.kind)

    def secret_of(self, sink: Sink) -> Secret | None:
        """The sink's HMAC key or SMTP password, unwrapped (for sending only)."""
        rows = self._gateway.store.rows(
            "SELECT wrapped_key, gmk_version FROM notify_sinks WHERE id = ?", [sink.id]
        )
        if not rows or rows[0]["wrapped_key"] is None:
            return None
        gmk = self._gateway.master_key_for(int(rows[0]["gmk_version"]))
        context = sink_key_context(self._gateway.gateway_id, sink.id, sink.name)
        return gmk.unwrap(bytes(rows[0]["wrapped_key"]), context)

    def checked_by_id(self, sink_id: str) -> Sink | None:
        """A delivery's sink (inside its transaction), or None if it was removed."""
        rows = self._rows("id = ?", [sink_id])
        return self._checked(rows[0]) if rows else None

    def _sink(self, name: str) -> Sink:
        rows = self._rows("name = ?", [name])
        if not rows:
            raise NotFoundError(f"no sink named {name}; see: gwvault notify list")
        return self._checked(rows[0])

    def _rows(self, where: str, params: list[Any]) -> list[dict[str, Any]]:
        columns = self._gateway.rows.columns("notify_sinks")
        return self._gateway.store.rows(
            f"SELECT {columns}, wrapped_key FROM notify_sinks WHERE {where} ORDER BY name",  # noqa: S608 - fixed fragments
            params,
        )

    def _checked(self, row: dict[str, Any]) -> Sink:
        seal = self._gateway.rows
        seal.check("notify_sinks", row)
        seal.check_current(
            "notify_sinks", row["id"], row["name"], (ADDED, REMOVED),
            lambda action, details: action == ADDED and details.get("sink_id") == row["id"],
        )  # fmt: skip
        try:
            config = config_from_text(row["kind"], row["config"])
        except (InvalidInputError, ValueError) as e:
            raise TamperedRowError("notify_sinks", row["id"]) from e
        return Sink(
            row["id"], row["name"], config, row["created_at"], row["wrapped_key"] is not None
        )

    def _deciding(self, name: str | None) -> AbstractContextManager[None]:
        """A write in which an admin's right is decided and acted on (``admin_write``)."""
        return admin_write(self._gateway, self._caller, "notify.manage", name)


def _kind(config: SinkConfig) -> SinkKind:
    return "webhook" if isinstance(config, WebhookConfig) else "email"


def _destination(config: SinkConfig) -> str:
    """Where a sink sends, for the trail (never a secret: URLs hold none)."""
    if isinstance(config, WebhookConfig):
        return config.url
    return f"smtp://{config.host}:{config.port} to {','.join(config.recipients)}"
