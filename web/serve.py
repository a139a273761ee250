"""``gwvault serve``: unlock the vault once, then serve the page and API over HTTPS."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from agent_keys.errors import ConflictError
from vault.access.endpoint_settings import EndpointSettings, load_endpoint
from vault.cli.input import pin_source
from vault.cli.main import EXIT_OK, data_dir
from vault.context import RequestContext
from vault.gateway import Gateway
from vault.keys.certificates import CertificateService
from vault.keys.tls import TlsService
from web.access import VaultHandle
from web.app import create_app
from web.server import make_server


def serve(args: argparse.Namespace) -> int:
    context = RequestContext.for_cli()
    with Gateway.open(data_dir(args), context, pin_source(args.pin_file)) as gateway:
        master_key = gateway.master_key  # the keystore (an HSM) is used here, once
        identity = TlsService(gateway).server_identity()
        stored = load_endpoint(gateway)
        settings = EndpointSettings(
            host=args.host or stored.host,
            port=args.port or stored.port,
            allow_remote=args.allow_remote or stored.allow_remote,
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
    app = create_app(VaultHandle(data_dir(args).resolve(), master_key))
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
    return EXIT_OK


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    # Raised in the main thread, out of cheroot's accept loop; stop() then
    # closes the socket and joins the worker threads.
    raise KeyboardInterrupt
