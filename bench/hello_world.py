"""``python -m bench.hello_world --port P``: the floor under gwvault's HTTPS figures.

A one-route Flask app served by the very server code ``gwvault serve`` uses
(same server, same TLS settings, a self-signed P-256 certificate like the
endpoint's), so ``gwvault req/s / hello-world req/s`` is gwvault's own cost as
a ratio.  The route answers POST (and GET) on the encrypt-value path with a
constant, so the load generator sends byte-for-byte the same request to both.

It prints ``serving https://127.0.0.1:P`` when ready, as ``gwvault serve``
does, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from flask import Flask

from agent_keys.randomness import system_random
from agent_keys.tls_identity import generate_tls_identity
from vault.context import utc_now
from web.server import make_server

PATH = "/api/v1/encrypt-value"
HOST = "127.0.0.1"


def create_app() -> Flask:
    app = Flask(__name__)

    @app.route(PATH, methods=["GET", "POST"])
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def serve(app: Flask, port: int) -> None:
    """Serve ``app`` on loopback as ``gwvault serve`` serves its app, until SIGTERM."""
    # Keep in step with web/serve.py: this is the part to adapt when the server changes.
    identity = generate_tls_identity([], utc_now(), system_random)
    server = make_server(app, HOST, port, identity)
    server.prepare()
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"serving https://{HOST}:{port}", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hello_world", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(create_app(), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
