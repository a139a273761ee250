"""Sending an event by email: SMTP with STARTTLS required, AUTH only over TLS.

The server must offer STARTTLS and present a certificate that verifies for its
name (the system's CAs or the sink's own); otherwise nothing is sent, not even
the sender's address, and the delivery retries (a stripped STARTTLS is what a
man in the middle does).  Port 465 is implicit TLS from the first byte.  The
password, if any, is given only after TLS is up.

The message is plain text listing the event: the same facts as the webhook's
body, never a secret, never a driver's message.  The subject names the
credential and the event.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from agent_keys.secret import Secret
from vault.connectors.tls_policy import client_context
from vault.notify.outcome import Delivered, Outcome, Refused, Retry
from vault.notify.sink_config import EmailConfig

TIMEOUT_SECONDS = 10.0


def event_message(config: EmailConfig, event: dict[str, Any], delivery: str) -> EmailMessage:
    """The email for one event (``event`` is the queued body, checked)."""
    kind, credential = str(event["kind"]), event.get("credential")
    message = EmailMessage()
    about = f"credential {credential}" if credential else "notification sink"
    message["Subject"] = f"[gwvault] {about}: {kind}"
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid("gwvault")
    message["X-Gwvault-Event"] = kind
    message["X-Gwvault-Delivery"] = delivery
    lines = [
        f"gwvault gateway {event.get('gateway_id')} reports:",
        "",
        f"  event:       {kind}",
        f"  credential:  {credential or '-'}",
        f"  at:          {event.get('at')}",
        f"  audit entry: {event.get('audit_seq')}",
    ]
    details = event.get("details")
    if isinstance(details, dict) and details:
        lines += ["", "details:"] + [f"  {key}: {value}" for key, value in sorted(details.items())]
    lines += ["", "See: gwvault audit list --target " + str(credential or "")]
    message.set_content("\n".join(lines) + "\n")
    return message


def send_email(config: EmailConfig, password: Secret | None, message: EmailMessage) -> Outcome:
    """Hand ``message`` to the SMTP server over verified TLS; never raises for the network."""
    context = client_context("verify-full", config.ca_pem)
    if context is None:  # verify-full always has one
        raise AssertionError("no TLS context")
    try:
        with _connected(config, context) as smtp:
            if config.user is not None and password is not None:
                smtp.login(config.user, password.reveal().decode("utf-8", "replace"))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as e:  # ssl errors and timeouts are OSErrors
        return _judged(config, e)
    return Delivered()


def _judged(config: EmailConfig, error: OSError | smtplib.SMTPException) -> Outcome:
    """What a failed session means for the delivery (the server's words go nowhere)."""
    if isinstance(error, _NoStartTls):
        return Retry(f"the SMTP server {config.host} does not offer STARTTLS; nothing was sent")
    if isinstance(error, smtplib.SMTPResponseException):
        code = int(error.smtp_code)
        if 400 <= code < 500:
            return Retry(f"the SMTP server answered {code}")
        return Refused(f"the SMTP server refused the message ({code})")
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return Refused("the SMTP server refused every recipient")
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return Retry("the SMTP server's TLS handshake failed (is its certificate trusted?)")
    # Unreachable, a timeout (TIMEOUT_SECONDS per step), a dropped session.
    return Retry(f"cannot reach the SMTP server at {config.host}:{config.port}")


class _NoStartTls(smtplib.SMTPException):
    pass


def _connected(config: EmailConfig, context: ssl.SSLContext) -> smtplib.SMTP:
    """A session over verified TLS: implicit on 465, else STARTTLS (required)."""
    if config.implicit_tls:
        return smtplib.SMTP_SSL(config.host, config.port, timeout=TIMEOUT_SECONDS, context=context)
    smtp = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_SECONDS)
    try:
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            raise _NoStartTls
        smtp.starttls(context=context)
        smtp.ehlo()
    except BaseException:
        smtp.close()
        raise
    return smtp
