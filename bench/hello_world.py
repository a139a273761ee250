"""``python -m bench.hello_world --port P``: the floor under gwvault's HTTPS figures.

A one-route Flask app served by the very server code ``gwvault serve`` uses
(same server, same TLS settings, a self-signed P-256 certificate like the
endpoint's), so ``gwvault req/s / hello-world req/s`` is gwvault's own cost as
a ratio.  The route answers POST (and GET) on the encrypt-value path with a
constant, so the load generator sends byte-for-byte the same request to both.

``--server cheroot`` (what gwvault used before) and ``--server granian`` (a
Rust server) serve the same app, so the choice of server is measured, not
asserted.  It prints ``serving https://127.0.0.1:P`` when ready, as ``gwvault serve``
does, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from flask import Flask

from agent_keys.private_files import memory_files
from agent_keys.randomness import system_random
from agent_keys.tls_identity import generate_tls_identity
from vault.context import utc_now
from web.server.limits import ServerLimits, default_workers
from web.server.listener import listening_socket
from web.server.tls import server_ssl_context
from web.server.workers import HttpsService, run_workers

PATH = "/api/v1/encrypt-value"
SERVERS = ("gwvault", "cheroot", "granian")
HOST = "127.0.0.1"


def create_app() -> Flask:
    app = Flask(__name__)

    @app.route(PATH, methods=["GET", "POST"])
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def serve(app: Flask, port: int) -> None:
    """Serve ``app`` on loopback as ``gwvault serve`` serves its app, until SIGTERM."""
    # In step with web/serve.py: one worker process per core, the same limits and TLS.
    identity = generate_tls_identity([], utc_now(), system_random)
    service = HttpsService(
        app, listening_socket(HOST, port), server_ssl_context(identity), ServerLimits()
    )
    print(f"serving https://{HOST}:{port}", flush=True)
    run_workers(service, default_workers())


def serve_cheroot(app: Flask, port: int) -> None:
    """The server gwvault used before issue 15: cheroot, 16 threads, the same TLS context."""
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    identity = generate_tls_identity([], utc_now(), system_random)
    server = wsgi.Server((HOST, port), app, numthreads=16, server_name="hello")
    with memory_files(identity.chain_pem, identity.private_key_pem().reveal()) as (chain, key):
        adapter = BuiltinSSLAdapter(chain, key)
    adapter.context = server_ssl_context(identity)
    server.ssl_adapter = adapter
    server.prepare()
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"serving https://{HOST}:{port}", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def serve_granian(port: int) -> None:
    """Granian (Rust: hyper and rustls), one worker process per core, WSGI."""
    from granian.constants import Interfaces
    from granian.server import Server as Granian

    identity = generate_tls_identity([], utc_now(), system_random)
    scratch = Path(tempfile.mkdtemp(prefix="hello-granian-"))
    (scratch / "cert.pem").write_bytes(identity.chain_pem)
    (scratch / "key.pem").write_bytes(identity.private_key_pem().reveal())  # a throwaway key
    server = Granian(
        "bench.hello_world:create_app",
        address=HOST,
        port=port,
        interface=Interfaces.WSGI,
        workers=default_workers(),
        factory=True,
        ssl_cert=scratch / "cert.pem",
        ssl_key=scratch / "key.pem",
        log_enabled=False,
    )
    print(f"serving https://{HOST}:{port}", flush=True)
    try:
        server.serve()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hello_world", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=SERVERS, default="gwvault")
    args = parser.parse_args(argv)
    if args.server == "granian":
        serve_granian(args.port)
    elif args.server == "cheroot":
        serve_cheroot(create_app(), args.port)
    else:
        serve(create_app(), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
