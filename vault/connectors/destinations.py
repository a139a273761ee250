"""Where a connection test may go: resolve once, check every address, connect to those.

A caller who is not an admin (a creator, an API token, an entry link) must not
turn "test connection" into a probe of the gateway machine itself or of the
cloud's metadata service (threat T-CN-2).  So for them every address a host
name resolves to is checked, and loopback, link-local, unspecified and cloud
metadata addresses (and the IPv6 forms that embed such an IPv4 address), and
any address of the gateway machine itself (its LAN address reaches services
bound to every interface), are refused unless an admin allowed them (``AllowedNetwork``, kept by
``vault.access.destination_policy``).  The name is resolved once and the
testers connect to the checked addresses, never to the name again, so a DNS
answer that changes between the check and the connect (DNS rebinding) gains
nothing.  Admins may test any destination (``any_network``); the TLS policy
applies to everyone.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, replace

from agent_keys.errors import InvalidInputError
from vault.connectors.connection import ConnectionTestResult
from vault.connectors.deadline import Deadline
from vault.connectors.proxy_route import RouteChooser

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ADDRESSES = 8

# Most specific first: the first match names the range in the detail.
REFUSED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(network), label)
    for network, label in (
        ("0.0.0.0/8", "unspecified"),  # Linux connects 0.0.0.0 to the local host
        ("127.0.0.0/8", "loopback"),
        ("169.254.169.254/32", "cloud metadata"),  # AWS, Azure, GCP, OCI instance metadata
        ("169.254.0.0/16", "link-local"),
        ("100.100.100.200/32", "cloud metadata"),  # Alibaba Cloud
        ("168.63.129.16/32", "cloud metadata"),  # Azure WireServer
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fe80::/10", "link-local"),
        ("fd00:ec2::/32", "cloud metadata"),  # AWS instance metadata over IPv6
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 2.5.5.1, deprecated


@dataclass(frozen=True)
class AllowedNetwork:
    """A network (and optionally one port) that tests may reach although refused by default."""

    network: IPNetwork
    port: int | None = None

    @classmethod
    def parse(cls, network: str, port: int | None = None) -> AllowedNetwork:
        """``network`` as CIDR (``127.0.0.1/32``, ``fd00::/8``); ``InvalidInputError`` if not."""
        try:
            parsed = ipaddress.ip_network(network, strict=True)
        except ValueError as e:
            raise InvalidInputError(
                "give a network in CIDR form with its host bits zero, such as 127.0.0.1/32"
            ) from e
        if port is not None and not 1 <= port <= 65535:
            raise InvalidInputError("the port must be a number from 1 to 65535")
        return cls(parsed, port)

    def admits(self, address: IPAddress, port: int) -> bool:
        return address in self.network and self.port in (None, port)

    def __str__(self) -> str:
        return f"{self.network}" + (f" port {self.port}" if self.port is not None else "")


@dataclass(frozen=True)
class DestinationPolicy:
    """Where the connection tests of one caller may go.

    ``allowed`` and ``sqlite_dirs`` are admin settings; ``protected_dirs`` (the
    vault's data dir) is never opened by a test; ``any_network`` is an admin's
    test, which skips the address checks (the SQLite rules still hold).
    ``proxy`` is how an HTTP test gets there (the admin's proxy settings): it
    changes the path, never the check, which applies to the real destination.
    """

    allowed: tuple[AllowedNetwork, ...] = ()
    sqlite_dirs: tuple[str, ...] = ()
    protected_dirs: tuple[str, ...] = ()
    any_network: bool = False
    proxy: RouteChooser | None = None

    def for_admin(self) -> DestinationPolicy:
        return replace(self, any_network=True)


@dataclass(frozen=True)
class Destination:
    """A checked destination: the name as given (TLS verifies it, HTTP sends it
    as Host) and the addresses to connect to, in order."""

    host: str
    port: int
    addresses: tuple[str, ...]


class DestinationRefused(Exception):
    """A test that must not run (or cannot): ``result`` says why, as a test result."""

    def __init__(self, result: ConnectionTestResult) -> None:
        super().__init__(result.reason)
        self.result = result


def resolve_destination(
    host: str, port: int, policy: DestinationPolicy, deadline: Deadline | None = None
) -> Destination:
    """Resolve ``host`` once and check every address against ``policy``.

    Raises ``DestinationRefused`` with reason ``refused_by_policy`` (an address
    in a refused range), ``unreachable`` (the name does not resolve) or
    ``timeout`` (not resolved before ``deadline``); no connection has been
    attempted either way.
    """

    def lookup() -> list[str]:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        return [str(info[4][0]) for info in found]

    try:
        infos = deadline.run(lookup) if deadline is not None else lookup()
    except TimeoutError as e:
        raise DestinationRefused(
            ConnectionTestResult("timeout", f"cannot resolve {host}: {e}")
        ) from e
    except (OSError, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise DestinationRefused(
            ConnectionTestResult("unreachable", f"cannot resolve {host}: {reason}")
        ) from e
    addresses = tuple(dict.fromkeys(infos))[:MAX_ADDRESSES]
    if not policy.any_network:
        for address in addresses:
            label = _refusal(address, port, policy.allowed)
            if label is not None:
                raise DestinationRefused(
                    ConnectionTestResult(
                        "refused_by_policy",
                        f"{host} is {address} ({label}), which tests by callers who are not"
                        " admins may not reach; an admin may allow it"
                        " (gwvault test-policy allow-network)",
                    )
                )
    return Destination(host, port, addresses)


def _refusal(address_text: str, port: int, allowed: tuple[AllowedNetwork, ...]) -> str | None:
    address = ipaddress.ip_address(address_text)
    label = refused_range(address, port, allowed)
    if label is not None:
        return f"a {label} address"
    admitted = any(entry.admits(_without_scope(address), port) for entry in allowed)
    if not admitted and is_this_machine(address_text, port):
        return "an address of the gateway machine itself"
    return None


def is_this_machine(address: str, port: int) -> bool:
    """Whether ``address`` is one of this machine's own.

    The kernel routes such an address locally and picks it as its own source:
    a UDP ``connect`` shows that choice without sending a packet, whatever
    interfaces or ``ip_nonlocal_bind`` the machine has.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((address, port))
        except OSError:  # no route, a broadcast address: not ours either way
            return False
        own = ipaddress.ip_address(str(probe.getsockname()[0]))
    return _without_scope(own) == _without_scope(ipaddress.ip_address(address))


def refused_range(
    address: IPAddress, port: int, allowed: tuple[AllowedNetwork, ...] = ()
) -> str | None:
    """The name of the refused range ``address`` (or an IPv4 address it embeds)
    falls in and no ``allowed`` entry admits; None when it may be reached."""
    for candidate in (address, *_embedded_ipv4(address)):
        plain = _without_scope(candidate)
        for network, label in REFUSED_NETWORKS:
            if plain.version == network.version and plain in network:
                if not any(entry.admits(plain, port) for entry in allowed):
                    return label
                break
    return None


def connect_tcp(
    destination: Destination, timeout: float, deadline: Deadline | None = None
) -> socket.socket:
    """A TCP connection to the first of the checked addresses that answers, each
    tried for ``timeout`` seconds at most and all of them within ``deadline``.

    Raises the last ``OSError`` when none does (``TimeoutError`` once the
    deadline passed).  The addresses are numeric, so nothing is resolved again.
    """
    failure: OSError = OSError(f"{destination.host} has no address")
    for address in destination.addresses:
        if deadline is not None:
            timeout = min(timeout, deadline.left())
        try:
            return socket.create_connection((address, destination.port), timeout)
        except OSError as e:
            failure = e
    raise failure


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses that an IPv6 address carries and that a connect may reach:
    mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64, 6to4 and Teredo."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    plain = _without_scope(address)
    if plain in _NAT64 or (plain in _IPV4_COMPATIBLE and int(plain) > 1):
        found.append(ipaddress.IPv4Address(int(plain) & 0xFFFFFFFF))
    return found


def _without_scope(address: IPAddress) -> IPAddress:
    """``fe80::1%eth0`` as ``fe80::1``: the zone does not change the range."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address
