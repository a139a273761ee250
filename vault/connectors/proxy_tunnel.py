"""Reaching a host through the admin's HTTP proxy: one CONNECT tunnel (RFC 9110 9.3.6).

``connect_routed`` is the one way gwvault's HTTPS-speaking callers open a TCP
connection (HTTP data-source tests, notification webhooks, the audit trail's
HTTPS sink): direct, or through a tunnel when the proxy settings route the
host through one.  The tunnel carries bytes only: TLS to the destination runs
end-to-end inside it, with the destination's own certificate checked by the
caller exactly as without a proxy, so the proxy sees names and sizes, never
the request, a credential or the body.

The proxy is spoken to in plain HTTP (no ``https://`` proxy: TLS inside TLS
buys little when the inner TLS is end-to-end).  Its answer is read byte by
byte up to the blank line, bounded, so nothing of the destination's stream is
consumed; only its status is believed, and only the status code is ever
shown (a reason phrase is the proxy's text).  The proxy's password goes in
``Proxy-Authorization`` (Basic, RFC 7617) and in no message.
"""

from __future__ import annotations

import base64
import re
import socket

from agent_keys.secret import Secret
from vault.connectors.deadline import Deadline
from vault.connectors.destinations import (
    Destination,
    DestinationPolicy,
    DestinationRefused,
    connect_tcp,
    resolve_destination,
)
from vault.connectors.proxy_route import ProxyRoute, RouteChooser

USER_AGENT = "gwvault"
MAX_ANSWER_BYTES = 8192
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [\x20-\x7e\t]*)?\r\n")
_ANY_ADDRESS = DestinationPolicy().for_admin()  # the proxy is the admin's own setting


class ProxyError(OSError):
    """The proxy could not be reached or would not open the tunnel.

    An ``OSError``, so a caller that reports unreachable hosts reports this too;
    the message names the proxy and the status, never a password.
    """


class ProxyAuthError(ProxyError):
    """The proxy answered 407 (or 401): its user or password is wrong or missing."""


def connect_routed(
    proxy: RouteChooser | None,
    host: str,
    port: int,
    deadline: Deadline,
    *,
    addresses: tuple[str, ...] | None = None,
    step: float | None = None,
) -> socket.socket:
    """A connected socket to ``host:port``: direct, or a tunnel when ``proxy`` routes it.

    ``addresses`` are the destination's checked addresses (a data-source test,
    ``vault.connectors.destinations``): they are what is connected to, or what
    the proxy is asked for, so the proxy never resolves a name to somewhere the
    check did not see.  Without them the name is resolved here (direct) or by
    the proxy (webhooks: an admin's setting).  ``step`` bounds each connect and
    read, ``deadline`` all of it.  Raises ``ProxyError`` (an ``OSError``),
    another ``OSError`` or ``TimeoutError``.
    """
    route = proxy.route_for(host) if proxy is not None else None
    if route is None:
        targets = addresses if addresses is not None else _resolved(host, port, deadline)
        sock = connect_tcp(Destination(host, port, targets), _step(step, deadline), deadline)
        sock.settimeout(_step(step, deadline))
        return sock
    failure: OSError = ProxyError(f"{host} has no address")
    for target in addresses if addresses is not None else (host,):
        try:
            return connect_via(route, target, port, deadline, step=step)
        except ProxyAuthError:
            raise  # the same login fails for every address
        except OSError as e:
            failure = e
    raise failure


def connect_via(
    route: ProxyRoute, host: str, port: int, deadline: Deadline, *, step: float | None = None
) -> socket.socket:
    """A socket tunnelled through ``route`` to ``host:port`` (a name or an IP address).

    Raises ``ProxyAuthError`` for 407, ``ProxyError`` when the proxy cannot be
    reached or refuses the tunnel, ``TimeoutError`` once ``deadline`` passes.
    """
    try:
        proxy = resolve_destination(route.host, route.port, _ANY_ADDRESS, deadline)
    except DestinationRefused as refused:
        raise ProxyError(
            f"cannot reach the proxy {route.address}: {refused.result.detail}"
        ) from None
    try:
        sock = connect_tcp(proxy, _step(step, deadline), deadline)
    except TimeoutError:
        raise
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ProxyError(f"cannot reach the proxy {route.address}: {reason}") from None
    try:
        with deadline.guarding(sock):
            sock.settimeout(_step(step, deadline))
            sock.sendall(_connect_request(route, host, port))
            status = _answer_status(sock, route)
    except BaseException:
        sock.close()
        raise
    if status == 200:
        sock.settimeout(_step(step, deadline))
        return sock
    sock.close()
    if status in (401, 407):
        # 407 is the standard answer (RFC 9110 15.5.8); tinyproxy answers a CONNECT with 401.
        raise ProxyAuthError(
            f"the proxy {route.address} wants a login (HTTP {status}): its user or password is"
            " wrong or missing (gwvault proxy set)"
        )
    raise ProxyError(
        f"the proxy {route.address} would not open a tunnel to {_authority(host, port)}"
        f" (HTTP {status})"
    )


def _connect_request(route: ProxyRoute, host: str, port: int) -> bytes:
    authority = _authority(host, port)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", f"User-Agent: {USER_AGENT}"]
    head = ("\r\n".join(lines) + "\r\n").encode("ascii")
    if route.password is not None or route.user is not None:
        login = (route.user or "").encode() + b":" + (route.password or Secret(b"")).reveal()
        head += b"Proxy-Authorization: Basic " + base64.b64encode(login) + b"\r\n"
    return head + b"\r\n"


def _authority(host: str, port: int) -> str:
    # RFC 9110 3.2: an IPv6 literal is bracketed in an authority.
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _answer_status(sock: socket.socket, route: ProxyRoute) -> int:
    """The status of the proxy's answer; reads exactly its head and no further."""
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ProxyError(f"the proxy {route.address} closed the connection without an answer")
        head += byte
        if len(head) > MAX_ANSWER_BYTES:
            raise ProxyError(f"the proxy {route.address} sent an answer too long to be HTTP")
    found = _STATUS_LINE.match(bytes(head))
    if found is None:
        raise ProxyError(f"the proxy {route.address} did not answer in HTTP")
    return int(found.group(1))


def _resolved(host: str, port: int, deadline: Deadline) -> tuple[str, ...]:
    try:
        return resolve_destination(host, port, _ANY_ADDRESS, deadline).addresses
    except DestinationRefused as refused:
        if refused.result.reason == "timeout":
            raise TimeoutError(refused.result.detail) from None
        raise OSError(refused.result.detail) from None


def _step(step: float | None, deadline: Deadline) -> float:
    left = deadline.left()
    return left if step is None else min(step, left)
