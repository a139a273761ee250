"""One complete HTTP request through a WSGI app, in a worker thread (PEP 3333).

The connection hands over a request whose head and body have been read in full
and checked against the limits; this module builds the environ, calls the app
and collects the whole answer, so the app never waits on the network.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import h11

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Peer:
    """Both ends of one connection, as the environ names them."""

    client_host: str
    client_port: int
    server_port: int


@dataclass(frozen=True)
class Reply:
    """What the app answered, ready to frame."""

    status: int
    reason: bytes
    headers: Headers
    body: bytes


# A hop-by-hop or framing header is the server's to write, never the app's (RFC 9112 section 6).
_SERVER_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})


def wsgi_environ(request: h11.Request, body: bytes, peer: Peer) -> dict[str, Any]:
    """The PEP 3333 environ of ``request``; headers whose names hold ``_`` are dropped.

    ``X-Forwarded_For`` and ``X-Forwarded-For`` both become
    ``HTTP_X_FORWARDED_FOR``; dropping the underscore form (as nginx and
    gunicorn do) keeps one header from posing as another.
    """
    path, _, query = request.target.partition(b"?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method.decode("ascii"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": "gwvault",
        "SERVER_PORT": str(peer.server_port),
        "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
        "REMOTE_ADDR": peer.client_host,
        "REMOTE_PORT": str(peer.client_port),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in request.headers:  # h11 lower-cases names
        if b"_" in raw_name:
            continue
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name == "content-length":
            environ["CONTENT_LENGTH"] = str(len(body))  # h11 checked it; chunked has none
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    if "CONTENT_LENGTH" not in environ and body:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def call_app(app: WsgiApp, environ: dict[str, Any]) -> Reply:
    """Run ``app`` on ``environ`` and collect its whole answer."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if started and exc_info is None:
            raise RuntimeError("start_response called twice without exc_info")
        started[:] = [(status, headers)]
        return _no_write

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started[0]
    code, _, reason = status.partition(" ")
    return Reply(
        status=int(code),
        reason=reason.encode("latin-1"),
        headers=[
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in headers
            if name.lower().encode("latin-1") not in _SERVER_HEADERS
        ],
        body=body,
    )


def _no_write(_data: bytes) -> object:
    # PEP 3333's legacy write() callable: Flask never uses it, and a server that
    # buffers whole answers has nowhere to stream it to.
    raise RuntimeError("the write() callable is not supported; return the body instead")
