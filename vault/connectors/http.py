"""HTTP login test with the stdlib ``http.client``: one GET, no redirects followed."""

from __future__ import annotations

import base64
import http.client
import ssl
from urllib.parse import urljoin, urlsplit

from vault.connectors.connection import ConnectionTestResult

USER_AGENT = "gwvault-connection-test"


def authorization_header(auth: str, username: str | None, password: str | None) -> str | None:
    """The ``Authorization`` value: HTTP Basic (RFC 7617), Bearer (RFC 6750) or none."""
    if auth == "basic":
        user_pass = f"{username or ''}:{password or ''}".encode()
        return "Basic " + base64.b64encode(user_pass).decode("ascii")
    if auth == "key":
        return f"Bearer {password or ''}"
    return None


def attempt_get(url: str, authorization: str | None, timeout: float) -> ConnectionTestResult:
    """GET ``url`` (checked by ``dispatch.http_url``) and judge the status; never raises.

    2xx and 3xx are a success.  A redirect is not followed, so the credential
    is never sent to another host; the message names where it points.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    if parts.scheme == "https":
        # Default context: certificate and host name verified against system CAs.
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if authorization is not None:
        headers["Authorization"] = authorization
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        status, reason = response.status, response.reason
        location = response.getheader("Location")
    except (OSError, http.client.HTTPException, ValueError) as e:
        # ssl.SSLError and socket timeouts are OSErrors.
        return ConnectionTestResult(False, f"cannot reach {parts.netloc}: {e or type(e).__name__}")
    finally:
        connection.close()  # the body is never read: the status is the answer
    return _judge_status(url, status, reason, location)


def _judge_status(url: str, status: int, reason: str, location: str | None) -> ConnectionTestResult:
    host = urlsplit(url).netloc
    if 200 <= status < 300:
        return ConnectionTestResult(True, f"ok: HTTP {status} {reason} from {host}")
    if 300 <= status < 400:
        return ConnectionTestResult(
            True, f"ok: HTTP {status} from {host}, redirects to {_redirect_host(url, location)}"
        )
    if status in (401, 403):
        return ConnectionTestResult(False, f"authentication failed (HTTP {status})")
    return ConnectionTestResult(False, f"failed: HTTP {status} {reason} from {host}")


def _redirect_host(url: str, location: str | None) -> str:
    """Only the host of a redirect: its path, query or user info may carry tokens."""
    if not location:
        return "nowhere (no Location header)"
    try:
        target = urlsplit(urljoin(url, location))
    except ValueError:
        return "an unreadable Location (not followed)"
    return f"{target.hostname or 'an unknown host'} (not followed)"
