"""Does a target send what the gateway sends it in clear, across the network?

One rule for every place a target is entered (the CLI's target flags; the web
form may show the same words as a note): a server reached without TLS (an
http:// URL, or TLS mode ``disable``) on a host other than this machine's
loopback.  The secret itself never goes to such a server over HTTP (Basic and
Bearer need a verified https:// server, ``dispatch._check_http_tls``), but a
database login over a plain connection does, and the data does in every case.
The CLI refuses such a target unless told ``--allow-cleartext``; the API stores
what an admin or creator chose (the form warns before it is sent).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from vault.connectors.dispatch import DEFAULT_PORTS, http_url, parse_host_port
from vault.format.data_source import DataSource

_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def cleartext_warning(source: DataSource) -> str | None:
    """Why ``source`` would be reached unencrypted over the network, or None.

    ``source`` has passed ``validate_target``; a sqlite file is never reached
    over a network.
    """
    if source.type == "sqlite":
        return None
    if source.type == "http":
        url = http_url(source.server)
        if not url.startswith("http://"):
            return None
        host, _ = parse_host_port(urlsplit(url).netloc, DEFAULT_PORTS["http"])
        what = f"{url} is plain HTTP"
    else:
        if source.tls not in ("disable", "prefer"):
            return None
        host, _ = parse_host_port(source.server, DEFAULT_PORTS[source.type])
        what = f"TLS mode {source.tls} to {source.server} means no encryption"
    if is_loopback_host(host):
        return None
    return (
        f"{what}: whatever is sent to it (a login, the data) crosses the network in clear,"
        " readable and changeable by anyone on the path"
    )


def is_loopback_host(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1: traffic that never leaves the machine."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve anywhere
