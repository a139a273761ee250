"""What an admin configures a notification sink with, checked the same way going in and coming back.

A sink's configuration is stored as canonical JSON in a sealed row
(``vault.notify.sinks``); the text read back is parsed again by the functions
here after its seal verifies, so nothing in it is believed unchecked.  Pure:
no I/O.

- A webhook is an ``https://`` URL (never plain HTTP: the body names
  credentials and their health, and the HMAC signature protects integrity
  only), with no user name or password in it, and optionally the CA
  certificates its server's certificate must chain to (else the system's).
- An email sink is an SMTP server (STARTTLS is required, or implicit TLS on
  port 465), a sender, up to ``MAX_RECIPIENTS`` recipients, and optionally a
  user name for AUTH (the password is stored wrapped, like the webhook's key).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from agent_keys.errors import InvalidInputError
from vault.format.audit_chain import canonical_json
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.strict_json import parse_json_object
from vault.names import is_host

SinkKind = Literal["webhook", "email"]
SINK_KINDS: tuple[SinkKind, ...] = ("webhook", "email")
SINK_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}"
_SINK_NAME = re.compile(SINK_NAME_PATTERN)
MAX_URL_CHARS = 2048
MAX_RECIPIENTS = 20
IMPLICIT_TLS_PORT = 465
# An address as it may stand in a header: one local part, one domain, nothing
# that could end the header or start another address.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}")
_USER = re.compile(r"[\x21-\x7e]{1,256}")
# The webhook's HMAC key as an admin gives it: printable ASCII, long enough to
# resist guessing, short enough for any receiver's configuration.
WEBHOOK_SECRET_MIN, WEBHOOK_SECRET_MAX = 16, 256
_WEBHOOK_SECRET = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    ca_pem: str | None = None

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port or 443

    @property
    def target(self) -> str:
        """The path and query the request goes to."""
        parts = urllib.parse.urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def facts(self) -> dict[str, Any]:
        return {"url": self.url, "ca_pem": self.ca_pem}


@dataclass(frozen=True)
class EmailConfig:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    ca_pem: str | None = None

    @property
    def implicit_tls(self) -> bool:
        return self.port == IMPLICIT_TLS_PORT

    def facts(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "from": self.sender,
                "to": list(self.recipients), "user": self.user, "ca_pem": self.ca_pem}  # fmt: skip


SinkConfig = WebhookConfig | EmailConfig


def check_sink_name(name: str) -> str:
    if not _SINK_NAME.fullmatch(name):
        raise InvalidInputError(
            "a sink name is 1-64 letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    return name


def webhook_config(url: str, ca_pem: str | None = None) -> WebhookConfig:
    """A webhook's configuration; ``InvalidInputError`` for anything but a plain https URL."""
    if len(url) > MAX_URL_CHARS or not url.isascii() or not url.isprintable() or " " in url:
        raise InvalidInputError(
            f"a webhook URL is up to {MAX_URL_CHARS} printable ASCII characters"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidInputError("the webhook URL is not a valid URL") from e
    if parts.scheme != "https":
        raise InvalidInputError(
            "a webhook URL must start with https:// (the body names credentials; gwvault never"
            " sends it in the clear)"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError(
            "a webhook URL must not hold a user name or password (the HMAC signature"
            " authenticates gwvault to the receiver)"
        )
    if not parts.hostname or not is_host(parts.hostname.strip("[]")) or port == 0:
        raise InvalidInputError("the webhook URL needs a host name or IP address")
    if parts.fragment:
        raise InvalidInputError("a webhook URL has no #fragment")
    return WebhookConfig(url, _canonical_ca(ca_pem))


def email_config(
    host: str,
    port: int,
    sender: str,
    recipients: list[str],
    *,
    user: str | None = None,
    ca_pem: str | None = None,
) -> EmailConfig:
    """An email sink's configuration; ``InvalidInputError`` for a bad host, port or address."""
    if not is_host(host):
        raise InvalidInputError("the SMTP host is a host name or an IP address")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidInputError("the SMTP port is 1-65535")
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise InvalidInputError(f"an email sink has 1-{MAX_RECIPIENTS} recipients")
    for address in (sender, *recipients):
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise InvalidInputError(
                f"{str(address)[:80]!r} is not an email address gwvault accepts (local@domain)"
            )
    if user is not None and not (isinstance(user, str) and _USER.fullmatch(user)):
        raise InvalidInputError("the SMTP user name is 1-256 printable characters, no spaces")
    return EmailConfig(
        host, port, sender, tuple(recipients), user=user, ca_pem=_canonical_ca(ca_pem)
    )


def check_webhook_secret(secret: bytes) -> None:
    """An HMAC key an admin gives: printable ASCII of a sensible length."""
    try:
        text = secret.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if not (WEBHOOK_SECRET_MIN <= len(text) <= WEBHOOK_SECRET_MAX) or not _WEBHOOK_SECRET.fullmatch(
        text
    ):
        raise InvalidInputError(
            f"a webhook secret is {WEBHOOK_SECRET_MIN}-{WEBHOOK_SECRET_MAX} printable ASCII"
            " characters without spaces"
        )


def config_text(config: SinkConfig) -> str:
    """The stored form: canonical JSON, sealed with the row."""
    return canonical_json(config.facts())


def config_from_text(kind: str, text: str) -> SinkConfig:
    """A stored configuration, checked again (``InvalidInputError`` if it is not one)."""
    facts = parse_json_object(text)
    try:
        if kind == "webhook" and set(facts) == {"url", "ca_pem"}:
            return webhook_config(facts["url"], facts["ca_pem"])
        if kind == "email" and set(facts) == {"host", "port", "from", "to", "user", "ca_pem"}:
            recipients = facts["to"]
            if isinstance(recipients, list):
                return email_config(facts["host"], facts["port"], facts["from"], recipients,
                                    user=facts["user"], ca_pem=facts["ca_pem"])  # fmt: skip
    except (TypeError, AttributeError) as e:
        raise InvalidInputError("a stored sink configuration is not one gwvault writes") from e
    raise InvalidInputError("a stored sink configuration is not one gwvault writes")


def parse_recipients(text: str) -> list[str]:
    """``--to a@x,b@y`` as a list (checked by ``email_config``)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def sink_key_context(gateway_id: str, sink_id: str, name: str) -> bytes:
    """What a sink's wrapped secret is bound to: its vault, row and name, so a
    wrapped key moved to another sink's row does not unwrap."""
    return f"gwvault/notify-sink/v1|{gateway_id}|{sink_id}|{name}".encode()


def _canonical_ca(ca_pem: str | None) -> str | None:
    if ca_pem is None:
        return None
    if not isinstance(ca_pem, str):
        raise InvalidInputError("CA certificates are PEM text")
    return canonical_ca_pem(ca_pem)
