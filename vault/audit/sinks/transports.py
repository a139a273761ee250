"""Sending records to a sink: one transport per sink and process.

A transport sends a batch of records whole or raises
``AuditSinkUnavailableError`` (naming the sink's address and the cause, never
a record).  Each process keeps one per sink and configuration, so a syslog
connection is reused across commits; the server's worker processes are forks,
so a transport is never shared with a child (the key holds the process id).

- ``syslog``: ``vault.audit.sinks.syslog_tls``.
- ``webhook``: one HTTPS POST per batch, the records as JSON Lines
  (``application/jsonl``), the server's certificate verified (verify-full), no
  redirect followed; any answer but 2xx is a refusal.  The records carry no
  secret and prove themselves (chained digests, signed checkpoints), so the
  POST is not signed: a forged record at the receiver can only raise an alarm
  in ``audit verify --against``, never hide a rollback.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import ssl
import threading
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, Protocol

from vault.audit.sinks.config import SyslogConfig
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.standing import AuditSink
from vault.audit.sinks.syslog_tls import SyslogTlsTransport
from vault.connectors.deadline import Deadline
from vault.connectors.pinned_http import PinnedHTTPSConnection
from vault.connectors.proxy_route import RouteChooser
from vault.connectors.proxy_tunnel import ProxyError, connect_routed
from vault.connectors.tls_policy import client_context
from vault.format.audit_chain import canonical_json
from vault.notify.sink_config import WebhookConfig
from vault.proxy.settings import ProxySettings

SEND_SECONDS = 10.0
"""One send, all of it (connect, handshake, body, answer): a block sink holds
the change's transaction this long at most before the change fails."""
_MAX_ANSWER_BYTES = 4096
USER_AGENT = "gwvault-audit"


class Transport(Protocol):
    def send(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


_kept: dict[tuple[int, str, str], Transport] = {}
_kept_lock = threading.Lock()


@atexit.register
def _close_kept() -> None:
    """A command that exits right after its change ends its connections with a
    close the collector reads to the end (a bare exit may reset a connection
    with unread TLS records, which can drop what the collector had not read)."""
    with _kept_lock:
        mine = [key for key in _kept if key[0] == os.getpid()]
        transports = [_kept.pop(key) for key in mine]
    for transport in transports:
        with contextlib.suppress(Exception):
            transport.close()


def transport_for(sink: AuditSink, proxy: ProxySettings) -> Transport:
    """This process's transport to ``sink`` as configured now (``proxy``: the
    admin's proxy settings, which a webhook goes through; syslog goes direct)."""
    route = canonical_json(proxy.facts()) if isinstance(sink.config, WebhookConfig) else ""
    key = (os.getpid(), sink.id, sink.config_text + route)
    with _kept_lock:
        found = _kept.get(key)
        if found is None:
            # A configuration that changed (re-added) or a parent's transport goes.
            for stale in [k for k in _kept if k[1] == sink.id or k[0] != key[0]]:
                transport = _kept.pop(stale)
                if stale[0] == key[0]:
                    transport.close()
            found = _kept[key] = _made(sink, proxy)
        return found


def _made(sink: AuditSink, proxy: ProxySettings) -> Transport:
    config = sink.config
    if isinstance(config, SyslogConfig):
        return SyslogTlsTransport(config.host, config.port, config.ca_pem, timeout=SEND_SECONDS)
    return WebhookTransport(config, proxy)


class WebhookTransport:
    """POSTs each batch as JSON Lines; 2xx means the receiver took all of it.

    The connection is kept between batches (a block sink sends on every
    commit, and a TLS handshake per commit tripled its cost); one the server
    closed meanwhile is replaced once, at once, on the same batch.
    """

    def __init__(self, config: WebhookConfig, proxy: RouteChooser | None = None) -> None:
        self._config = config
        self._proxy = proxy
        self._where = f"the audit webhook {config.host}:{config.port}"
        self._lock = threading.Lock()
        self._connection: PinnedHTTPSConnection | None = None

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        body = "".join(canonical_json(dict(record)) + "\n" for record in records).encode("ascii")
        with self._lock:
            if self._connection is not None:
                try:
                    self._post(body)
                    return
                except _Dropped:
                    pass  # the kept connection had gone: once more, on a new one
            try:
                self._post(body)
            except _Dropped as e:
                raise AuditSinkUnavailableError(f"cannot reach {self._where}") from e

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _post(self, body: bytes) -> None:
        config, where = self._config, self._where
        deadline = Deadline(SEND_SECONDS)
        kept = self._connection is not None
        try:
            connection = self._connected()
            with deadline.guarding(connection.sock):
                connection.request(
                    "POST", config.target, body=body,
                    headers={"Content-Type": "application/jsonl", "User-Agent": USER_AGENT},
                )  # fmt: skip
                response = connection.getresponse()
                response.read(_MAX_ANSWER_BYTES)
            if response.will_close:
                self._drop()
        except TimeoutError as e:
            self._drop()
            raise AuditSinkUnavailableError(
                f"{where} did not answer within {SEND_SECONDS:g} s"
            ) from e
        except (OSError, http.client.HTTPException) as e:
            if kept or isinstance(e, http.client.RemoteDisconnected):
                # A kept connection the collector closed (a restart, an idle
                # timeout) fails however TLS or HTTP notices; a new one tells.
                self._drop()
                raise _Dropped from e
            self._failed(e)
        if not 200 <= response.status < 300:
            self._drop()
            raise AuditSinkUnavailableError(
                f"{where} refused the entries (HTTP {response.status}; redirects are not followed)"
            )

    def _failed(self, e: OSError | http.client.HTTPException) -> NoReturn:
        """Why a new connection failed, in the admin's words."""
        self._drop()
        where = self._where
        if isinstance(e, ssl.SSLError | ssl.CertificateError):
            raise AuditSinkUnavailableError(
                f"{where}: the TLS handshake failed (is its certificate trusted?)"
            ) from e
        if isinstance(e, ProxyError):
            raise AuditSinkUnavailableError(f"cannot reach {where}: {e}") from e
        raise AuditSinkUnavailableError(f"cannot reach {where}") from e

    def _connected(self) -> PinnedHTTPSConnection:
        if self._connection is None:
            config = self._config
            context = client_context("verify-full", config.ca_pem)
            if context is None:  # verify-full always has one
                raise AssertionError("no TLS context")
            # Direct, or through the admin's proxy: TLS to the collector either way.
            sock = connect_routed(
                self._proxy, config.host, config.port, Deadline(SEND_SECONDS), step=SEND_SECONDS
            )
            connection = PinnedHTTPSConnection(config.host, config.port, sock, context)
            connection.connect()
            self._connection = connection
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _Dropped(Exception):
    """The server closed or reset the connection before answering."""
