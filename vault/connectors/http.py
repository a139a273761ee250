"""HTTP login test with the stdlib ``http.client``: one GET, no redirects followed.

The connection goes to the addresses ``vault.connectors.destinations`` checked,
never to the name resolved again; TLS verifies the name (SNI and the
certificate) and the request names it in ``Host``.  An https URL follows the
credential's TLS mode (``vault.connectors.tls_policy``); an http URL is allowed
only with TLS mode disable (``dispatch`` checks).  A redirect is reported,
never followed, so neither the credential nor the request leaves the checked
destination (threats T-DS-1, T-CN-2).
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
from urllib.parse import urljoin, urlsplit

from vault.connectors.connection import ConnectionTestResult, ReasonCode
from vault.connectors.deadline import Deadline
from vault.connectors.destinations import Destination
from vault.connectors.pinned_http import PinnedHTTPConnection, PinnedHTTPSConnection
from vault.connectors.proxy_route import RouteChooser
from vault.connectors.proxy_tunnel import connect_routed
from vault.connectors.tls_policy import client_context
from vault.format.data_source import TlsMode

USER_AGENT = "gwvault-connection-test"


def authorization_header(auth: str, username: str | None, password: str | None) -> str | None:
    """The ``Authorization`` value: HTTP Basic (RFC 7617), Bearer (RFC 6750) or none."""
    if auth == "basic":
        user_pass = f"{username or ''}:{password or ''}".encode()
        return "Basic " + base64.b64encode(user_pass).decode("ascii")
    if auth == "key":
        return f"Bearer {password or ''}"
    return None


def attempt_get(
    url: str,
    destination: Destination,
    *,
    tls: TlsMode,
    ca_pem: str | None,
    authorization: str | None,
    deadline: Deadline,
    proxy: RouteChooser | None = None,
) -> ConnectionTestResult:
    """GET ``url`` (checked by ``dispatch.http_url``) and judge the status; never raises.

    2xx and 3xx are a success.  A redirect is not followed; the detail names
    only the host it points to.  Connect, TLS and the answer share ``deadline``.
    Through ``proxy`` the tunnel goes to the checked addresses, and TLS inside
    it verifies the destination as on a direct connection.
    """
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if authorization is not None:
        headers["Authorization"] = authorization
    try:
        sock = connect_routed(
            proxy, destination.host, destination.port, deadline, addresses=destination.addresses
        )
        with sock, deadline.guarding(sock):
            connection = _connection(parts.scheme, destination, sock, tls, ca_pem)
            try:
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
                status, reason = response.status, response.reason
                location = response.getheader("Location")
            finally:
                connection.close()  # the body is never read: the status is the answer
    except (OSError, http.client.HTTPException, ValueError) as e:
        # ssl.SSLError and socket timeouts are OSErrors.
        return ConnectionTestResult(
            _failure_reason(e), f"cannot reach {parts.netloc}: {e or type(e).__name__}"
        )
    return _judge_status(url, status, reason, location)


def _connection(
    scheme: str, destination: Destination, sock: socket.socket, tls: TlsMode, ca_pem: str | None
) -> http.client.HTTPConnection:
    if scheme != "https":
        return PinnedHTTPConnection(destination.host, destination.port, sock)
    # Legacy rows (binding version 1) were always verified over https.
    mode: TlsMode = "verify-full" if tls == "prefer" else tls
    context = client_context(mode, ca_pem) or ssl.create_default_context()
    return PinnedHTTPSConnection(destination.host, destination.port, sock, context)


def _failure_reason(error: Exception) -> ReasonCode:
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return "tls_failed"
    if isinstance(error, TimeoutError):
        return "timeout"
    return "unreachable"


def _judge_status(url: str, status: int, reason: str, location: str | None) -> ConnectionTestResult:
    host = urlsplit(url).netloc
    if 200 <= status < 300:
        return ConnectionTestResult("ok", f"ok: HTTP {status} {reason} from {host}")
    if 300 <= status < 400:
        return ConnectionTestResult(
            "ok", f"ok: HTTP {status} from {host}, redirects to {_redirect_host(url, location)}"
        )
    if status in (401, 403):
        return ConnectionTestResult("auth_failed", f"authentication failed (HTTP {status})")
    found = _FAILED_STATUSES.get(status, "unreachable")
    return ConnectionTestResult(found, f"failed: HTTP {status} {reason} from {host}")


_FAILED_STATUSES: dict[int, ReasonCode] = {
    404: "database_missing",  # the URL names no such resource
    410: "database_missing",
    423: "account_locked",  # RFC 4918 Locked
}


def _redirect_host(url: str, location: str | None) -> str:
    """Only the host of a redirect: its path, query or user info may carry tokens."""
    if not location:
        return "nowhere (no Location header)"
    try:
        target = urlsplit(urljoin(url, location))
    except ValueError:
        return "an unreadable Location (not followed)"
    return f"{target.hostname or 'an unknown host'} (not followed)"
