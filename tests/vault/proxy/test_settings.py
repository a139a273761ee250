"""Proxy URLs, NO_PROXY lists and the system's environment: strict, one clear error each."""

from __future__ import annotations

import pytest

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret
from vault.connectors.proxy_route import ProxyRoute
from vault.connectors.proxy_tunnel import ProxyError
from vault.proxy.settings import (
    ProxySettings,
    bypasses,
    check_proxy_password,
    check_proxy_user,
    environment_route,
    parse_no_proxy,
    parse_proxy_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.example.org:3128", ("proxy.example.org", 3128)),
        ("http://Proxy.Example.ORG:3128/", ("proxy.example.org", 3128)),
        ("HTTP://10.0.0.1:8080", ("10.0.0.1", 8080)),
    ],
)
def test_a_plain_http_proxy_url_is_accepted(url: str, expected: tuple[str, int]) -> None:
    assert parse_proxy_url(url) == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://user:pw@proxy.example.org:3128", "no user or password"),
        ("http://user@proxy.example.org:3128", "no user or password"),
        ("http://proxy.example.org:3128\r\nX-Injected: 1", "printable ASCII"),
        ("http://proxy.example.org:3128\n", "printable ASCII"),
        ("https://proxy.example.org:3128", "starts with http://"),
        ("socks5://proxy.example.org:1080", "starts with http://"),
        ("ftp://proxy.example.org:21", "starts with http://"),
        ("javascript:alert(1)", "starts with http://"),
        ("proxy.example.org:3128", "starts with http://"),
        ("http://proxy.example.org:0", "port"),
        ("http://proxy.example.org:99999", "port"),
        ("http://proxy.example.org:-1", "port"),
        ("http://proxy.example.org", "needs its port"),
        ("http://[::1]:3128", "not IPv6"),
        ("http://[fe80::1%25eth0]:3128", "not IPv6"),
        ("http://" + "a" * 600 + ":3128", "up to 512"),
        ("http://proxy.example.org:3128/path", "no path"),
        ("http://proxy.example.org:3128?x=1", "no path"),
        ("http://proxy.example.org:3128#frag", "no path"),
        ("http://proxy.exämple.org:3128", "printable ASCII"),
        ("http://proxy example.org:3128", "printable ASCII"),
        ("http://:3128", "host name"),
        ("http://-bad-.example:3128", "host name"),
        ("", "up to 512"),
    ],
)
def test_a_hostile_proxy_url_is_refused_with_one_clear_error(url: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        parse_proxy_url(url)


@pytest.mark.parametrize("user", ["", "a:b", "with space", "tab\tuser", "ü", "x" * 257])
def test_a_proxy_user_is_printable_ascii_without_colon(user: str) -> None:
    with pytest.raises(InvalidInputError):
        check_proxy_user(user)


@pytest.mark.parametrize("password", [b"", b"line\nbreak", b"cr\rx", b"nul\x00x", b"x" * 1025])
def test_a_proxy_password_fits_a_header(password: bytes) -> None:
    with pytest.raises(InvalidInputError):
        check_proxy_password(Secret(password))


def test_no_proxy_entries_match_names_domains_addresses_and_networks() -> None:
    entries = parse_no_proxy(" internal.example , .corp.example,10.0.0.0/8, 192.0.2.7,,")
    assert entries == ("internal.example", ".corp.example", "10.0.0.0/8", "192.0.2.7")
    direct = ["internal.example", "db.internal.example", "corp.example", "a.corp.example",
              "10.1.2.3", "192.0.2.7", "INTERNAL.example."]  # fmt: skip
    proxied = ["notinternal.example", "example", "11.0.0.1", "192.0.2.8", "corp.example.org"]
    assert all(bypasses(entries, host) for host in direct)
    assert not any(bypasses(entries, host) for host in proxied)
    assert bypasses(parse_no_proxy("*"), "anything.example")


@pytest.mark.parametrize(
    "text",
    ["host.example:8080", "10.0.0.0/33", "10.0.0.1/8", "a b", "http://x", "*.example",
     "x\r\ny", ",".join(f"h{i}" for i in range(65))],
)  # fmt: skip
def test_a_no_proxy_list_with_a_bad_entry_is_refused_whole(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_no_proxy(text)


def test_the_system_mode_reads_https_proxy_and_no_proxy_only() -> None:
    env = {
        "HTTPS_PROXY": "http://proxy.example.org:3128",
        "no_proxy": ".internal",
        "HTTP_PROXY": "http://httpoxy.example:80",
        "ALL_PROXY": "http://all.example:1",
    }
    route, no_proxy = environment_route(env)
    assert route == ProxyRoute("proxy.example.org", 3128) and no_proxy == (".internal",)
    assert environment_route({"HTTP_PROXY": "http://httpoxy.example:80"}) == (None, ())
    settings = ProxySettings("system", environment=tuple(env.items()))
    assert settings.route_for("db.internal") is None
    assert settings.route_for("api.example.org") == route


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"HTTPS_PROXY": "http://a.example:1", "https_proxy": "http://b.example:1"}, "differ"),
        ({"HTTPS_PROXY": "http://u:p@a.example:3128"}, "HTTPS_PROXY holds a user or password"),
        ({"https_proxy": "socks5://a.example:1080"}, "HTTPS_PROXY is refused"),
        ({"HTTPS_PROXY": "http://a.example:3128", "NO_PROXY": "x:1"}, "NO_PROXY is refused"),
    ],
)
def test_a_system_environment_gwvault_refuses_sends_nothing_direct(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(InvalidInputError, match=says):
        environment_route(env)
    settings = ProxySettings("system", environment=tuple(env.items()))
    with pytest.raises(ProxyError, match=says):
        settings.route_for("api.example.org")
    assert settings.facts()["problem"]


def test_facts_never_show_the_password() -> None:
    route = ProxyRoute("proxy.example.org", 3128, "gw", Secret.from_text("CANARY-proxy-pw"))
    facts = ProxySettings("custom", route).facts()
    assert facts["password"] == "set" and "CANARY" not in repr(facts)
    assert "CANARY" not in repr(ProxySettings("custom", route))
