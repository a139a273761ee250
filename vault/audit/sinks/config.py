"""What an admin configures an audit sink with, checked the same way going in and coming back.

An audit sink receives every audit entry, signed checkpoint and rotation
record as it commits (``vault.audit.sinks.forwarding``).  Its configuration is
stored as canonical JSON in a sealed row (``vault.audit.sinks.registry``) and
parsed again by the functions here after the seal verifies.  Pure: no I/O.

- ``syslog``: RFC 5424 messages over TLS (RFC 5425) to ``host:port``; the
  server's certificate must chain to the CA certificates the admin gives (never
  the system's: a syslog collector's CA is the organisation's own) and name
  the host.
- ``webhook``: JSON Lines POSTed to an ``https://`` URL (checked as the
  notification webhooks are: ``vault.notify.sink_config.webhook_config``).

The policy says what happens when a sink cannot take what it is sent:

- ``block``: the change fails, and nothing is changed (fail closed; a stopped
  sink stops every change, sign-ins and the agent's uses included).
- ``buffer``: the change goes on; the trail itself is the durable queue, and
  the sink is sent what it missed, in order, when it is back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agent_keys.errors import InvalidInputError
from vault.format.audit_chain import canonical_json
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.strict_json import parse_json_object
from vault.names import is_host
from vault.notify.sink_config import WebhookConfig, webhook_config

SinkKind = Literal["syslog", "webhook"]
Policy = Literal["block", "buffer"]
SYSLOG_TLS_PORT = 6514  # RFC 5425's port
_MAX_ADDRESS_CHARS = 300
_NOT_STORED = "a stored audit sink configuration is not one gwvault writes"


@dataclass(frozen=True)
class SyslogConfig:
    host: str
    port: int
    ca_pem: str

    def facts(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "ca_pem": self.ca_pem}

    @property
    def destination(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"syslog+tls://{host}:{self.port}"


AuditSinkConfig = SyslogConfig | WebhookConfig


def kind_of(config: AuditSinkConfig) -> SinkKind:
    return "syslog" if isinstance(config, SyslogConfig) else "webhook"


def destination_of(config: AuditSinkConfig) -> str:
    """Where a sink sends, for the trail and listings (no secret: none is configured)."""
    return config.destination if isinstance(config, SyslogConfig) else config.url


def check_policy(policy: str) -> Policy:
    if policy == "block":
        return "block"
    if policy == "buffer":
        return "buffer"
    raise InvalidInputError("an audit sink's policy is block or buffer")


def syslog_config(address: str, ca_pem: str) -> SyslogConfig:
    """``host:port`` (``[v6]:port``; the port defaults to 6514) and the CA
    certificates its server's certificate must chain to."""
    if (
        not isinstance(address, str)
        or not address
        or len(address) > _MAX_ADDRESS_CHARS
        or not address.isascii()
        or not address.isprintable()
        or " " in address
    ):
        raise InvalidInputError("a syslog address is host:port, in printable ASCII")
    host, port = _split_address(address)
    if not is_host(host):
        raise InvalidInputError("a syslog address needs a host name or an IP address")
    if not isinstance(ca_pem, str):
        raise InvalidInputError("CA certificates are PEM text")
    return SyslogConfig(host, port, canonical_ca_pem(ca_pem))


def config_text(config: AuditSinkConfig) -> str:
    """The stored form: canonical JSON, sealed with the row."""
    return canonical_json(config.facts())


def config_from_text(kind: str, text: str) -> AuditSinkConfig:
    """A stored configuration, checked again (``InvalidInputError`` if it is not one)."""
    facts = parse_json_object(text)
    try:
        if kind == "syslog" and set(facts) == {"host", "port", "ca_pem"}:
            port = facts["port"]
            if type(port) is int and 1 <= port <= 65535:
                host = facts["host"]
                address = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
                return syslog_config(address, facts["ca_pem"])
        if kind == "webhook" and set(facts) == {"url", "ca_pem"}:
            return webhook_config(facts["url"], facts["ca_pem"])
    except (TypeError, AttributeError) as e:
        raise InvalidInputError(_NOT_STORED) from e
    raise InvalidInputError(_NOT_STORED)


def _split_address(address: str) -> tuple[str, int]:
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidInputError("an IPv6 syslog address is [address]:port")
        port_text = rest[1:] if rest else str(SYSLOG_TLS_PORT)
    else:
        host, colon, port_text = address.partition(":")
        if not colon:
            port_text = str(SYSLOG_TLS_PORT)
        elif ":" in port_text:
            raise InvalidInputError("write an IPv6 syslog address as [address]:port")
    if not port_text.isdigit() or len(port_text) > 5 or not 1 <= int(port_text) <= 65535:
        raise InvalidInputError("a syslog port is 1 to 65535")
    return host, int(port_text)
