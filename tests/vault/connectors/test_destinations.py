"""The destination policy: which addresses a test by a caller who is not an admin may
reach, and that a refused one is never connected to (threat T-CN-2)."""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret
from tests.service_fixtures import nobody_connected
from vault.connectors import dispatch
from vault.connectors.connection import ConnectionCredential
from vault.connectors.destinations import (
    AllowedNetwork,
    DestinationPolicy,
    DestinationRefused,
    is_this_machine,
    refused_range,
    resolve_destination,
)
from vault.format.data_source import DataSource, DataSourceType

BASIC = ConnectionCredential("basic", "alice", Secret.from_text("s3cret-pw"))
ANONYMOUS = ConnectionCredential("anonymous", None, None)  # a secret never goes over http://
TEREDO_LOOPBACK = "2001:0:4136:e378:8000:63bf:80ff:fffe"  # Teredo, client 127.0.0.1


@pytest.mark.parametrize(
    ("address", "label"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a bind
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%1", "link-local"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        (TEREDO_LOOPBACK, "loopback"),
        ("10.0.0.5", None),
        ("192.168.1.10", None),
        ("172.16.0.1", None),
        ("8.8.8.8", None),
        ("2001:db8::1", None),
        ("fd12:3456::1", None),
    ],
)
def test_refused_ranges(address: str, label: str | None) -> None:
    assert refused_range(ipaddress.ip_address(address), 5432) == label


def test_an_allowed_network_admits_its_port_only_and_every_form_of_its_addresses() -> None:
    allowed = (AllowedNetwork.parse("127.0.0.1/32", 5432),)
    assert refused_range(ipaddress.ip_address("127.0.0.1"), 5432, allowed) is None
    assert refused_range(ipaddress.ip_address("::ffff:127.0.0.1"), 5432, allowed) is None
    assert refused_range(ipaddress.ip_address("127.0.0.1"), 5433, allowed) == "loopback"
    assert refused_range(ipaddress.ip_address("127.0.0.2"), 5432, allowed) == "loopback"


@pytest.mark.parametrize(("network", "port"), [("127.0.0.1/8", None), ("db", None), ("::1/128", 0)])
def test_an_allowed_network_must_be_cidr_with_a_real_port(network: str, port: int | None) -> None:
    with pytest.raises(InvalidInputError):
        AllowedNetwork.parse(network, port)


def test_every_address_of_a_name_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    # A name with a private address and a loopback one: the second refuses the test.
    real = socket.getaddrinfo

    def two_answers(host: str, *args: object, **kwargs: object) -> object:
        if host != "two.example":
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 80))
            for address in ("10.0.0.5", "127.0.0.1")
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    with pytest.raises(DestinationRefused) as refused:
        resolve_destination("two.example", 80, DestinationPolicy())
    assert refused.value.result.reason == "refused_by_policy"
    assert "127.0.0.1 (a loopback address)" in refused.value.result.detail
    checked = resolve_destination("two.example", 80, DestinationPolicy().for_admin())
    assert checked.addresses == ("10.0.0.5", "127.0.0.1")


def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    with pytest.raises(DestinationRefused) as refused:
        resolve_destination("no-such-host.invalid", 80, DestinationPolicy())
    assert refused.value.result.reason == "unreachable"


@pytest.mark.parametrize(
    ("kind", "server"),
    [
        ("postgresql", "127.0.0.1:{port}"),
        ("mysql", "[::ffff:127.0.0.1]:{port}"),
        ("http", "http://127.0.0.1:{port}/"),
        ("http", "http://localhost:{port}/"),
    ],
)
def test_a_refused_destination_is_never_connected_to(
    mute_listener: socket.socket, kind: DataSourceType, server: str
) -> None:
    port = mute_listener.getsockname()[1]
    source = DataSource(kind, server.format(port=port), tls="disable")
    login = ANONYMOUS if kind == "http" else BASIC
    result = dispatch.test_connection(source, login, 2.0)  # the default: the strictest policy
    assert result.reason == "refused_by_policy", result.detail
    assert nobody_connected(mute_listener)


def _own_lan_address() -> str:
    """This machine's address towards the world (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1 (RFC 5737): any routable address
        except OSError:
            pytest.skip("this machine has no route beyond loopback")
        address: str = probe.getsockname()[0]
    return address


def test_the_gateways_own_lan_address_is_refused_too() -> None:
    # A service bound to every interface answers on the LAN address as on loopback.
    address = _own_lan_address()
    with socket.create_server(("0.0.0.0", 0), backlog=8) as listener:  # noqa: S104 - the point
        listener.setblocking(False)
        port = listener.getsockname()[1]
        source = DataSource("postgresql", f"{address}:{port}", tls="disable")
        result = dispatch.test_connection(source, BASIC, 2.0)
        assert result.reason == "refused_by_policy", result.detail
        assert "the gateway machine itself" in result.detail
        assert nobody_connected(listener)
        allowed = DestinationPolicy(allowed=(AllowedNetwork.parse(f"{address}/32", port),))
        admitted = dispatch.test_connection(source, BASIC, 1.0, policy=allowed)
        assert admitted.reason == "timeout", admitted.detail  # allowed: it connected
    assert not is_this_machine("192.0.2.123" if address != "192.0.2.123" else "198.51.100.7", 9)


def test_the_metadata_service_is_refused_at_once() -> None:
    started = time.monotonic()
    source = DataSource("http", "http://169.254.169.254/latest/meta-data/", tls="disable")
    result = dispatch.test_connection(source, ANONYMOUS, 5.0)
    assert result.reason == "refused_by_policy"
    assert time.monotonic() - started < 1


def test_an_admins_test_may_reach_loopback(mute_listener: socket.socket) -> None:
    port = mute_listener.getsockname()[1]
    source = DataSource("postgresql", f"127.0.0.1:{port}", tls="disable")
    result = dispatch.test_connection(source, BASIC, 1.0, policy=DestinationPolicy().for_admin())
    assert result.reason == "timeout", result.detail  # it connected; nobody answered
    assert not nobody_connected(mute_listener)
