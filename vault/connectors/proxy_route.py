"""A proxy route as the connectors see it: where to tunnel through, and who chooses.

Its own module so that ``destinations`` (whose ``DestinationPolicy`` carries the
chooser of a test) and ``proxy_tunnel`` (which connects through a route) both
import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent_keys.secret import Secret


@dataclass(frozen=True)
class ProxyRoute:
    """A proxy to tunnel through: where it listens and, optionally, its Basic login."""

    host: str
    port: int
    user: str | None = None
    password: Secret | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class RouteChooser(Protocol):
    """What decides whether a host is reached through a proxy (``vault.proxy.ProxySettings``)."""

    def route_for(self, host: str) -> ProxyRoute | None:
        """The proxy to reach ``host`` through, or None for a direct connection;
        ``ProxyError`` when the settings cannot be used (a bad environment)."""
        ...
