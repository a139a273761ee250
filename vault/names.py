"""Rules for the names people give things: data sources, gateways and hosts."""

from __future__ import annotations

import ipaddress
import re

from agent_keys.errors import InvalidInputError

# A data-source name travels in JWE headers, audit entries, URLs and file
# names: keep it to characters that need no escaping anywhere.  The pattern is
# also the form's HTML ``pattern`` (a browser's "v" flag wants the "-" escaped).
DATASOURCE_NAME_MAX = 128
DATASOURCE_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}"
_DATASOURCE_NAME = re.compile(DATASOURCE_NAME_PATTERN)
_GATEWAY_NAME_MAX = 64


def check_datasource_name(name: str) -> str:
    """Return ``name`` if it is a valid data-source name; else ``InvalidInputError``."""
    if not _DATASOURCE_NAME.fullmatch(name):
        raise InvalidInputError(
            "a data-source name is 1-128 characters of letters, digits, '.', '_' and '-',"
            " starting with a letter or digit"
        )
    return name


def check_gateway_name(name: str) -> str:
    """A gateway name becomes the certificate CN: printable, 1-64 characters."""
    if not (0 < len(name) <= _GATEWAY_NAME_MAX) or not name.isprintable() or name != name.strip():
        raise InvalidInputError(
            "a gateway name is 1-64 printable characters without leading or trailing spaces"
        )
    return name


# A host as the endpoint settings and the served address take one: an IP
# address, or a DNS name of letters, digits, dots and hyphens.
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def is_host(text: str) -> bool:
    """Whether ``text`` is an IP address or a host name."""
    return is_ip_address(text) or bool(_HOST_NAME.fullmatch(text))


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
