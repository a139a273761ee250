"""The proxy settings read back and checked: what every connection through the proxy uses.

Builds on the opened vault's parts, not on ``Gateway``, so the commit hook of
the audit sinks (``vault.audit.sinks.forwarding``), which ``Gateway`` sets,
can send through the proxy too.  Changing the settings is ``vault.proxy.stored``.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any, Protocol

from agent_keys.errors import InvalidInputError
from agent_keys.master_key import MasterKey
from vault.access.row_seal import RowSeal, TamperedRowError
from vault.connectors.proxy_route import ProxyRoute
from vault.format.strict_json import parse_json_object
from vault.proxy.settings import (
    ENV_NO_PROXY,
    ENV_PROXY,
    ProxySettings,
    check_proxy_user,
    parse_no_proxy,
    parse_proxy_url,
)

SETTING = "proxy"
SET, CLEARED = "proxy.set", "proxy.cleared"
_CUSTOM_KEYS = {"mode", "host", "port", "user", "password", "no_proxy"}


class ProxyVault(Protocol):
    """What reading the settings needs of an opened vault (``Gateway`` is one)."""

    @property
    def gateway_id(self) -> str: ...

    rows: RowSeal

    def master_key_for(self, version: int) -> MasterKey: ...


def proxy_password_context(gateway_id: str, route: ProxyRoute) -> bytes:
    """What the wrapped password is bound to: its vault, proxy and user."""
    return f"gwvault/proxy-password/v1|{gateway_id}|{route.address}|{route.user or ''}".encode()


def load_proxy(gateway: ProxyVault, environ: Mapping[str, str] = os.environ) -> ProxySettings:
    """The stored settings, checked (``TamperedRowError`` if a database writer changed
    them); system mode reads the proxy variables of ``environ`` when used."""
    stored = stored_setting(gateway)
    if stored is None:
        return ProxySettings()
    if stored["mode"] == "system":
        names = (*ENV_PROXY, *ENV_NO_PROXY)
        return ProxySettings(
            "system", environment=tuple((n, environ[n]) for n in names if n in environ)
        )
    route, wrapped = route_of(stored)
    if wrapped is not None:
        version, blob = wrapped
        context = proxy_password_context(gateway.gateway_id, route)
        password = gateway.master_key_for(version).unwrap(blob, context)
        route = ProxyRoute(route.host, route.port, route.user, password)
    return ProxySettings("custom", route, tuple(stored["no_proxy"]))


def stored_setting(gateway: ProxyVault) -> dict[str, Any] | None:
    """The setting as stored, its seal and the trail checked; None when unset."""
    raw = gateway.rows.setting(SETTING)  # TamperedRowError if a database writer changed it
    try:
        stored = None if raw is None else parse_json_object(raw)
    except ValueError:
        stored = {}
    if stored is not None and stored.get("mode") not in ("system", "custom"):
        raise TamperedRowError("settings", SETTING)
    shown = None if stored is None else proxy_named(stored)

    def agrees(action: str, details: dict[str, Any]) -> bool:
        if stored is None:
            return action == CLEARED
        return action == SET and (details.get("mode"), details.get("proxy")) == (
            stored["mode"], shown)  # fmt: skip

    gateway.rows.check_current("settings", SETTING, gateway.gateway_id, (SET, CLEARED), agrees)
    return stored


def route_of(stored: dict[str, Any]) -> tuple[ProxyRoute, tuple[int, bytes] | None]:
    """A custom setting's route and wrapped password, checked as when it was set."""
    try:
        if set(stored) != _CUSTOM_KEYS or not isinstance(stored["port"], int):
            raise InvalidInputError("not a stored proxy")
        host, port = parse_proxy_url(f"http://{stored['host']}:{stored['port']}")
        user = None if stored["user"] is None else check_proxy_user(stored["user"])
        parse_no_proxy(",".join(stored["no_proxy"]))
        wrapped = stored["password"]
        if wrapped is None:
            return ProxyRoute(host, port, user), None
        if not isinstance(wrapped, dict) or set(wrapped) != {"gmk_version", "wrapped"}:
            raise InvalidInputError("not a stored password")
        version, blob = wrapped["gmk_version"], wrapped["wrapped"]
        if type(version) is not int or not isinstance(blob, str):
            raise InvalidInputError("not a stored password")
        return ProxyRoute(host, port, user), (version, base64.b64decode(blob, validate=True))
    except (InvalidInputError, TypeError, AttributeError, binascii.Error) as e:
        raise TamperedRowError("settings", SETTING) from e


def proxy_named(stored: Mapping[str, Any]) -> str:
    """The proxy as the trail names it: never a password."""
    if stored["mode"] == "system":
        return "environment"
    return f"{stored['host']}:{stored['port']}"
