"""Where the HTTPS endpoint listens: host and port, stored as vault settings.

Loopback by default.  Any other address exposes the page to the network, so
it needs ``allow_remote`` set explicitly, and ``serve`` warns about it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from agent_keys.errors import InvalidInputError
from vault.gateway import Gateway
from vault.names import is_host, is_ip_address

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050


@dataclass(frozen=True)
class EndpointSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise InvalidInputError("the port must be a number from 1 to 65535")
        if not is_host(self.host):
            raise InvalidInputError("the host must be an IP address or a host name")
        if not self.is_loopback and not self.allow_remote:
            raise InvalidInputError(
                f"{self.host} is not a loopback address; add --allow-remote to expose the page"
                " to the network"
            )

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        return is_ip_address(self.host) and ipaddress.ip_address(self.host).is_loopback

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


def load_endpoint(gateway: Gateway) -> EndpointSettings:
    """The stored settings (sealed rows: ``TamperedRowError`` if one was altered)."""
    rows = gateway.rows
    return EndpointSettings(
        host=rows.setting("endpoint_host") or DEFAULT_HOST,
        port=int(rows.setting("endpoint_port") or DEFAULT_PORT),
        allow_remote=rows.setting("endpoint_allow_remote") == "yes",
    )


def save_endpoint(gateway: Gateway, settings: EndpointSettings) -> None:
    with gateway.store.write():
        gateway.rows.set_setting("endpoint_host", settings.host)
        gateway.rows.set_setting("endpoint_port", str(settings.port))
        gateway.rows.set_setting("endpoint_allow_remote", "yes" if settings.allow_remote else "no")
        gateway.audit.record(
            "endpoint.changed", gateway.gateway_id, host=settings.host, port=settings.port
        )
