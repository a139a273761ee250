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

import http.client
import os
import ssl
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from vault.audit.sinks.config import SyslogConfig
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.registry import AuditSink
from vault.audit.sinks.syslog_tls import SyslogTlsTransport
from vault.connectors.deadline import Deadline
from vault.connectors.tls_policy import client_context
from vault.format.audit_chain import canonical_json
from vault.notify.sink_config import WebhookConfig

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


def transport_for(sink: AuditSink) -> Transport:
    """This process's transport to ``sink`` as configured now."""
    key = (os.getpid(), sink.id, sink.config_text)
    with _kept_lock:
        found = _kept.get(key)
        if found is None:
            # A configuration that changed (re-added) or a parent's transport goes.
            for stale in [k for k in _kept if k[1] == sink.id or k[0] != key[0]]:
                transport = _kept.pop(stale)
                if stale[0] == key[0]:
                    transport.close()
            found = _kept[key] = _made(sink)
        return found


def _made(sink: AuditSink) -> Transport:
    config = sink.config
    if isinstance(config, SyslogConfig):
        return SyslogTlsTransport(config.host, config.port, config.ca_pem, timeout=SEND_SECONDS)
    return WebhookTransport(config)


class WebhookTransport:
    """POSTs each batch as JSON Lines; 2xx means the receiver took all of it."""

    def __init__(self, config: WebhookConfig) -> None:
        self._config = config

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        body = "".join(canonical_json(dict(record)) + "\n" for record in records).encode("ascii")
        config = self._config
        where = f"the audit webhook {config.host}:{config.port}"
        context = client_context("verify-full", config.ca_pem)
        if context is None:  # verify-full always has one
            raise AssertionError("no TLS context")
        deadline = Deadline(SEND_SECONDS)
        connection = http.client.HTTPSConnection(
            config.host, config.port, timeout=SEND_SECONDS, context=context
        )
        try:
            connection.connect()
            if connection.sock is None:
                raise AuditSinkUnavailableError(f"{where} did not connect")
            with deadline.guarding(connection.sock):
                connection.request(
                    "POST", config.target, body=body,
                    headers={"Content-Type": "application/jsonl", "User-Agent": USER_AGENT},
                )  # fmt: skip
                response = connection.getresponse()
                response.read(_MAX_ANSWER_BYTES)
        except (ssl.SSLError, ssl.CertificateError) as e:
            raise AuditSinkUnavailableError(
                f"{where}: the TLS handshake failed (is its certificate trusted?)"
            ) from e
        except TimeoutError as e:
            raise AuditSinkUnavailableError(
                f"{where} did not answer within {SEND_SECONDS:g} s"
            ) from e
        except (OSError, http.client.HTTPException) as e:
            raise AuditSinkUnavailableError(f"cannot reach {where}") from e
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise AuditSinkUnavailableError(
                f"{where} refused the entries (HTTP {response.status}; redirects are not followed)"
            )

    def close(self) -> None:
        """Nothing is kept open between sends."""
