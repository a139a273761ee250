"""Sending an event to a webhook: one HTTPS POST, signed, verified, bounded, never redirected.

The body is the event as queued (canonical JSON: kind, credential, time, audit
entry, gateway, details; never a secret).  Headers::

    X-Gwvault-Event: credential.status-changed
    X-Gwvault-Delivery: <the event's id in the queue; the same on every retry>
    X-Gwvault-Timestamp: <Unix seconds of this attempt>
    X-Gwvault-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>">

The key is the sink's secret as the admin holds it (its ASCII text).  A
receiver recomputes the HMAC, compares in constant time, and refuses an old
timestamp (README "Notifications" has a verifier).

The server's certificate is verified against the system's CAs or the sink's
own (``client_context``, verify-full), end-to-end through the admin's
proxy when one is set (``vault.connectors.proxy_tunnel``).  2xx is delivered; 429 and 5xx are
retried (``Retry-After`` in seconds honoured, bounded by the delivery loop);
a redirect or any other 4xx is refused: the admin's URL is wrong, and a
redirect would take the body where the admin did not say.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ssl

from agent_keys.secret import Secret
from vault.connectors.deadline import Deadline
from vault.connectors.pinned_http import post_verified
from vault.connectors.proxy_route import RouteChooser
from vault.connectors.proxy_tunnel import ProxyError
from vault.notify.outcome import Delivered, Outcome, Refused, Retry
from vault.notify.sink_config import WebhookConfig

USER_AGENT = "gwvault-notify"
STEP_SECONDS = 10.0
"""Connect, TLS handshake, each read: at most this long each."""
TOTAL_SECONDS = 30.0
"""One attempt, all of it."""


def signature(key: Secret, timestamp: str, body: bytes) -> str:
    """The ``X-Gwvault-Signature`` value."""
    mac = hmac.new(key.reveal(), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(
    kind: str, delivery: str, timestamp: int, body: bytes, key: Secret
) -> dict[str, str]:
    stamp = str(timestamp)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Gwvault-Event": kind,
        "X-Gwvault-Delivery": delivery,
        "X-Gwvault-Timestamp": stamp,
        "X-Gwvault-Signature": signature(key, stamp, body),
    }


def post_event(
    config: WebhookConfig,
    headers: dict[str, str],
    body: bytes,
    proxy: RouteChooser | None = None,
) -> Outcome:
    """POST ``body`` to the webhook, through ``proxy`` when it routes the host;
    never raises for what the network, the proxy or the server does."""
    try:
        answer = post_verified(
            config.host, config.port, config.target, body, headers, ca_pem=config.ca_pem,
            proxy=proxy, deadline=Deadline(TOTAL_SECONDS), step=STEP_SECONDS,
        )  # fmt: skip
    except (ssl.SSLError, ssl.CertificateError):
        return Retry("the webhook's TLS handshake failed (is its certificate trusted?)")
    except TimeoutError:
        return Retry(f"the webhook did not answer within {TOTAL_SECONDS:g} s")
    except ProxyError as e:  # its message names the proxy and a status, never a password
        return Retry(f"cannot reach the webhook at {config.host}:{config.port}: {e}")
    except (OSError, http.client.HTTPException):
        return Retry(f"cannot reach the webhook at {config.host}:{config.port}")
    return judge(answer.status, answer.retry_after)


def judge(status: int, retry_after: str | None) -> Outcome:
    """What an HTTP answer means for the delivery."""
    if 200 <= status < 300:
        return Delivered(f"HTTP {status}")
    if status == 429 or 500 <= status < 600:
        return Retry(f"the webhook answered HTTP {status}", _seconds(retry_after))
    if 300 <= status < 400:
        return Refused(
            f"the webhook answered with a redirect (HTTP {status}); gwvault does not follow it"
        )
    return Refused(f"the webhook refused the event (HTTP {status})")


def _seconds(retry_after: str | None) -> float | None:
    """``Retry-After`` in delay-seconds (an HTTP date is ignored: backoff decides)."""
    if retry_after is None or not retry_after.strip().isdigit() or len(retry_after.strip()) > 9:
        return None
    return float(retry_after.strip())
