"""``gwvault serve``: unlock the vault once, then serve the page and API over HTTPS.

The CLI parses the command and reads the PIN; it calls ``serve_endpoint`` by
module name, so neither package imports the other.  The GMK is unwrapped here,
once, in the parent; the worker processes are forks of it (web.server.workers).
Before anything is unlocked the process is hardened (agent_keys.process_hardening):
no core dump, not dumpable, memory locked where the limit allows; each fork locks
its memory again.  Under systemd (``Type=notify``) READY=1 is sent once the
vault is unlocked and the port completes a TLS handshake, STOPPING=1 on the way out.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from agent_keys.errors import ConflictError, InvalidInputError
from agent_keys.keystore import PinSource
from agent_keys.process_hardening import harden_process, lock_memory
from agent_keys.tls_identity import TlsIdentity
from vault.access.endpoint_settings import EndpointSettings, load_endpoint
from vault.context import RequestContext
from vault.format.fingerprints import colon_hex_of_b64url
from vault.gateway import Gateway
from vault.keys.certificates import CertificateService
from vault.keys.tls import TlsService
from vault.served_address import RunFile, ServedAddress
from web.access import VaultHandle
from web.app import create_app
from web.housekeeping import (
    alongside,
    audit_housekeeper,
    audit_sink_sender,
    notification_deliverer,
    worker_life,
)
from web.metrics.worker_counts import shared_worker_counts, worker_exited
from web.server.limits import ServerLimits, default_workers
from web.server.listener import listening_socket
from web.server.readiness import ready_once_answering
from web.server.systemd_notify import ServiceManager
from web.server.tls import server_ssl_context
from web.server.workers import HttpsService, run_workers

MAX_WORKERS = 64
# Under TimeoutStartSec (60 s in deploy/gwvault.service), so a service whose
# workers never answer fails its start rather than being READY.
READY_WITHIN_SECONDS = 30.0


def serve_endpoint(
    data_dir: Path,
    pin: PinSource,
    host: str | None,
    port: int | None,
    allow_remote: bool,
    *,
    workers: int | None = None,
) -> int:
    """Serve until SIGTERM or Ctrl-C; ``host``/``port``/``allow_remote`` override
    the stored endpoint settings; ``workers`` defaults to the number of cores.
    Returns the exit status; raises ``VaultError`` when it cannot start."""
    count = default_workers() if workers is None else workers
    if not 1 <= count <= MAX_WORKERS:
        raise InvalidInputError(f"--workers is 1 to {MAX_WORKERS}")
    hardening = harden_process()  # before the PIN is read or the GMK unwrapped
    manager = ServiceManager.from_environment()
    _tell(manager, "STATUS=unlocking the vault")
    context = RequestContext.for_cli()
    with Gateway.open(data_dir, context, pin) as gateway:
        master_key = gateway.master_key  # the keystore (an HSM) is used here, once
        identity = TlsService(gateway).server_identity()
        stored = load_endpoint(gateway)
        settings = EndpointSettings(
            host=host or stored.host,
            port=port or stored.port,
            allow_remote=allow_remote or stored.allow_remote,
        )
        warning = CertificateService(gateway).expiry_warning()
        gateway.audit.record("endpoint.started", gateway.gateway_id, url=settings.url)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if not hardening["memory_locked"]:
        print(f"warning: memory not locked: {hardening['memory_lock_detail']}", file=sys.stderr)
    if not settings.is_loopback:
        print(
            f"warning: serving on {settings.host}, reachable from the network; keep a firewall"
            " in front of it",
            file=sys.stderr,
        )
    try:
        sock = listening_socket(settings.host, settings.port)
    except OSError as e:
        raise ConflictError(f"cannot listen on {settings.url}: {e.strerror or e}") from e
    _log_to_stderr()
    with shared_worker_counts():  # before create_app: its request metrics count there
        handle = VaultHandle(data_dir.resolve(), master_key, pin)
        return _serve(handle, sock, identity, settings=settings, count=count, manager=manager)


def _serve(
    handle: VaultHandle,
    sock: socket.socket,
    identity: TlsIdentity,
    *,
    settings: EndpointSettings,
    count: int,
    manager: ServiceManager | None,
) -> int:
    limits = ServerLimits()
    data_dir = handle.data_dir
    service = HttpsService(
        # A third of the app threads at most run connection tests, so tests
        # against silent hosts never hold every thread (T-CN-7).
        create_app(handle, connection_tests=max(1, limits.threads // 3)),
        sock,
        server_ssl_context(identity),
        limits,
        around_worker=lambda: worker_life(handle),
        housekeeper=alongside(
            audit_housekeeper(handle),
            alongside(notification_deliverer(handle), audit_sink_sender(handle)),
        ),
        after_fork=lock_memory,
        on_started=lambda: _report_ready(manager, sock, f"serving {settings.url}"),
        on_stopping=lambda: _tell(manager, "STOPPING=1", "STATUS=stopping"),
        worker_exited=worker_exited,
    )
    # Where this server listens, for `gwvault entry-link create` (vault.served_address).
    served = ServedAddress(settings.host, sock.getsockname()[1], os.getpid())
    with RunFile(data_dir, served):
        print(
            f"serving {settings.url} (TLS certificate SHA-256"
            f" {colon_hex_of_b64url(identity.facts()['sha256'])};"
            f" {count} worker process{'es' if count > 1 else ''})",
            flush=True,
        )
        status = run_workers(service, count)
    print("stopped", flush=True)
    return status


def _tell(manager: ServiceManager | None, *fields: str) -> None:
    if manager is not None:
        manager.notify(*fields)


def _report_ready(manager: ServiceManager | None, sock: socket.socket, status: str) -> None:
    if manager is not None:  # nobody waits otherwise: no probe
        ready_once_answering(manager, sock.getsockname()[:2], status, READY_WITHIN_SECONDS)


def _log_to_stderr() -> None:
    # gwvault's own lines only (requests, server events): a library's INFO
    # lines could carry connection details nobody reviewed for secrets.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("gwvault")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
