"""``gwvault serve``: unlock the vault once, then serve the page and API over HTTPS.

The CLI parses the command and reads the PIN; it calls ``serve_endpoint`` by
module name, so neither package imports the other.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

from agent_keys.errors import ConflictError
from agent_keys.keystore import PinSource
from vault.access.endpoint_settings import EndpointSettings, load_endpoint
from vault.context import RequestContext
from vault.gateway import Gateway
from vault.keys.certificates import CertificateService
from vault.keys.tls import TlsService
from web.access import VaultHandle
from web.app import create_app
from web.server import make_server


def serve_endpoint(
    data_dir: Path, pin: PinSource, host: str | None, port: int | None, allow_remote: bool
) -> None:
    """Serve until SIGTERM or Ctrl-C; ``host``/``port``/``allow_remote`` override
    the stored endpoint settings.  Raises ``VaultError`` when it cannot start."""
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
    if not settings.is_loopback:
        print(
            f"warning: serving on {settings.host}, reachable from the network; keep a firewall"
            " in front of it",
            file=sys.stderr,
        )
    app = create_app(VaultHandle(data_dir.resolve(), master_key))
    server = make_server(app, settings.host, settings.port, identity)
    try:
        server.prepare()
    except OSError as e:
        raise ConflictError(f"cannot listen on {settings.url}: {e.strerror or e}") from e

    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop, like Ctrl-C
    print(f"serving {settings.url} (TLS sha256 {identity.facts()['sha256']})", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        server.stop()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    # Raised in the main thread, out of cheroot's accept loop; stop() then
    # closes the socket and joins the worker threads.
    raise KeyboardInterrupt
