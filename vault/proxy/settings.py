"""The admin's proxy settings as values: parsed strictly, the same going in and coming back.

Three modes:

- ``none`` (the default): every connection is direct.
- ``system``: the service's own environment, read when a connection is made:
  ``HTTPS_PROXY`` (or ``https_proxy``) and ``NO_PROXY`` (or ``no_proxy``).
  When both spellings are set they must agree; ``HTTP_PROXY`` and
  ``ALL_PROXY`` are not read (every tunnel is a CONNECT, and ``HTTP_PROXY``
  is what a CGI request header can set: "httpoxy").
- ``custom``: an ``http://HOST:PORT`` the admin gives, an optional user and a
  password kept wrapped (``vault.proxy.stored``), and a ``NO_PROXY`` list.

A proxy URL is ``http://`` (the tunnel's TLS is end-to-end; no ``https://``
proxy), a host name or IPv4 address (IPv6 literals are refused: give a name),
an explicit port 1-65535, no path beyond ``/``, no query or fragment, and no
user or password in it (the user is ``--user``, the password is prompted:
never a command-line argument, never in an environment dump).

NO_PROXY: comma-separated; blanks ignored; ``*`` alone means every host;
``name`` or ``.name`` matches that name and every name under it (case
ignored); an IP address matches that literal address; a CIDR network matches
a literal address inside it.  An entry with a port or anything else is
refused, the whole list with it.  Pure: no I/O (the environment is handed in).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret
from vault.connectors.proxy_route import ProxyRoute
from vault.connectors.proxy_tunnel import ProxyError
from vault.names import is_host, is_ip_address

ProxyMode = Literal["none", "system", "custom"]
PROXY_MODES: tuple[ProxyMode, ...] = ("none", "system", "custom")
MAX_URL_CHARS = 512
MAX_NO_PROXY_ENTRIES = 64
MAX_PASSWORD_BYTES = 1024
_USER = re.compile(r"[\x21-\x39\x3b-\x7e]{1,256}")  # printable ASCII, no space, no ':'
_NAME = re.compile(r"\.?[A-Za-z0-9_]([A-Za-z0-9._-]{0,251}[A-Za-z0-9_])?")
ENV_PROXY = ("HTTPS_PROXY", "https_proxy")
ENV_NO_PROXY = ("NO_PROXY", "no_proxy")


@dataclass(frozen=True)
class ProxySettings:
    """How gwvault's HTTPS callers reach the network (``RouteChooser``)."""

    mode: ProxyMode = "none"
    route: ProxyRoute | None = None  # custom mode
    no_proxy: tuple[str, ...] = ()  # custom mode
    # System mode: the proxy variables of the service's environment, as pairs.
    environment: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def route_for(self, host: str) -> ProxyRoute | None:
        """The proxy to reach ``host`` through; None: directly.  ``ProxyError`` when
        system mode's environment is not one gwvault accepts (nothing goes direct then)."""
        if self.mode == "none":
            return None
        route, no_proxy = self.route, self.no_proxy
        if self.mode == "system":
            try:
                route, no_proxy = environment_route(dict(self.environment))
            except InvalidInputError as e:
                raise ProxyError(f"the proxy is the system's, and {e}") from None
        if route is None or bypasses(no_proxy, host):
            return None
        return route

    def facts(self) -> dict[str, object]:
        """What ``proxy show`` prints: never the password, only whether there is one.
        System mode shows what this process's environment gives, or why it is refused."""
        route, no_proxy, problem = self.route, self.no_proxy, None
        if self.mode == "system":
            try:
                route, no_proxy = environment_route(dict(self.environment))
            except InvalidInputError as e:
                problem = str(e)
        return {
            "mode": self.mode,
            "proxy": None if route is None else f"http://{route.address}",
            "user": None if route is None else route.user,
            "password": "set" if route is not None and route.password is not None else None,
            "no_proxy": list(no_proxy),
            "problem": problem,
        }


def parse_proxy_url(url: str) -> tuple[str, int]:
    """``http://HOST:PORT`` as (host, port); ``InvalidInputError`` for anything else."""
    if (
        not (0 < len(url) <= MAX_URL_CHARS)
        or not url.isascii()
        or not url.isprintable()
        or " " in url
    ):
        raise InvalidInputError(
            f"a proxy URL is up to {MAX_URL_CHARS} printable ASCII characters, such as"
            " http://proxy.example.org:3128"
        )
    if not url.lower().startswith("http://"):
        raise InvalidInputError(
            "a proxy URL starts with http:// (gwvault tunnels with CONNECT; the TLS inside the"
            " tunnel is end-to-end, so no https:// proxy), such as http://proxy.example.org:3128"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidInputError("the proxy URL's port must be a number from 1 to 65535") from e
    if "@" in parts.netloc:
        raise InvalidInputError(
            "a proxy URL holds no user or password: give the user with --user; the password"
            " is asked for (or read from --password-file)"
        )
    host = parts.hostname or ""
    if parts.netloc.startswith("[") or ":" in host:
        raise InvalidInputError("give the proxy as a host name or an IPv4 address, not IPv6")
    if not is_host(host):
        raise InvalidInputError("the proxy URL needs a host name or an IPv4 address")
    if port is None or not 0 < port < 65536:
        raise InvalidInputError("the proxy URL needs its port, 1-65535, such as :3128")
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidInputError("a proxy URL has no path, query or fragment")
    return host.lower(), port


def check_proxy_user(user: str) -> str:
    if not _USER.fullmatch(user):
        raise InvalidInputError(
            "a proxy user name is 1-256 printable ASCII characters, no spaces and no ':'"
        )
    return user


def check_proxy_password(password: Secret) -> None:
    raw = password.reveal()
    if not 0 < len(raw) <= MAX_PASSWORD_BYTES or any(b in raw for b in b"\x00\r\n"):
        raise InvalidInputError(
            f"a proxy password is 1-{MAX_PASSWORD_BYTES} bytes without NUL or line breaks"
        )


def parse_no_proxy(text: str) -> tuple[str, ...]:
    """A NO_PROXY list (module docstring), normalised; ``InvalidInputError`` if not one."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if len(entries) > MAX_NO_PROXY_ENTRIES:
        raise InvalidInputError(f"a NO_PROXY list has at most {MAX_NO_PROXY_ENTRIES} entries")
    return tuple(dict.fromkeys(_no_proxy_entry(entry) for entry in entries))


def _no_proxy_entry(entry: str) -> str:
    if entry == "*" or is_ip_address(entry):
        return entry.lower()
    if "/" in entry:
        try:
            return str(ipaddress.ip_network(entry, strict=True))
        except ValueError:
            pass
    elif _NAME.fullmatch(entry):
        return entry.lower()
    raise InvalidInputError(
        f"{entry[:80]!r} is not a NO_PROXY entry gwvault accepts: a host name, .domain,"
        " an IP address, a CIDR network or * (no ports)"
    )


def bypasses(no_proxy: tuple[str, ...], host: str) -> bool:
    """Whether ``host`` (a name or an IP address) is reached directly."""
    name = host.lower().strip("[]").rstrip(".")
    address = ipaddress.ip_address(name) if is_ip_address(name) else None
    for entry in no_proxy:
        if entry == "*":
            return True
        if "/" in entry:
            matched = address is not None and address in ipaddress.ip_network(entry)
        elif is_ip_address(entry):
            matched = address == ipaddress.ip_address(entry)
        else:
            domain = entry.lstrip(".")
            matched = name == domain or name.endswith("." + domain)
        if matched:
            return True
    return False


def environment_route(env: Mapping[str, str]) -> tuple[ProxyRoute | None, tuple[str, ...]]:
    """System mode: the route and NO_PROXY list ``env`` gives (no proxy: None)."""
    proxy = _one_value(env, ENV_PROXY)
    if not proxy:
        return None, ()
    if "@" in proxy:
        raise InvalidInputError(
            "its HTTPS_PROXY holds a user or password: gwvault keeps a proxy password sealed,"
            " not in the environment (gwvault proxy set custom --user)"
        )
    try:
        host, port = parse_proxy_url(proxy)
    except InvalidInputError as e:
        raise InvalidInputError(f"its HTTPS_PROXY is refused: {e}") from None
    try:
        no_proxy = parse_no_proxy(_one_value(env, ENV_NO_PROXY) or "")
    except InvalidInputError as e:
        raise InvalidInputError(f"its NO_PROXY is refused: {e}") from None
    return ProxyRoute(host, port), no_proxy


def _one_value(env: Mapping[str, str], names: tuple[str, str]) -> str | None:
    upper, lower = (env.get(name, "").strip() for name in names)
    if upper and lower and upper != lower:
        raise InvalidInputError(f"{names[0]} and {names[1]} are both set and differ")
    return upper or lower or None
