"""The proxy settings as the vault keeps them: one sealed setting, the password wrapped.

The setting ``proxy`` is canonical JSON in a sealed row (``vault.access.row_seal``),
so a database writer without the key cannot point gwvault's HTTPS traffic at a
proxy of theirs; an older sealed copy put back is refused too, because the
trail's newest ``proxy.set``/``proxy.cleared`` entry must name the same mode
and proxy (and a row deleted behind a ``proxy.set`` is refused: traffic does
not silently go direct).  The password is wrapped by the GMK with a context
naming the proxy and user it is for (``proxy_password_context``), rewrapped by
a GMK rotation (``rewrap_proxy_password``), and leaves the vault only in the
``Proxy-Authorization`` header of a tunnel.  Changing the settings is an
admin's (``proxy.manage``), decided and audited inside the write that changes them.
"""

from __future__ import annotations

import base64
from contextlib import AbstractContextManager
from typing import Any

from agent_keys.errors import InvalidInputError
from agent_keys.master_key import MasterKey
from agent_keys.secret import Secret
from vault.access.admin_write import admin_write
from vault.access.callers import Caller
from vault.connectors.proxy_route import ProxyRoute
from vault.format.audit_chain import canonical_json
from vault.gateway import Gateway
from vault.proxy.loading import (
    CLEARED,
    SET,
    SETTING,
    load_proxy,
    proxy_named,
    proxy_password_context,
    route_of,
    stored_setting,
)
from vault.proxy.settings import (
    ProxyMode,
    ProxySettings,
    check_proxy_password,
    check_proxy_user,
    parse_no_proxy,
    parse_proxy_url,
)


def shown_proxy(gateway: Gateway, caller: Caller | None = None) -> dict[str, object]:
    """What ``proxy show`` and ``GET /api/v1/proxy`` show (``ProxySettings.facts``: never
    the password), the caller's right (``proxy.manage``) decided as the database says now."""
    with _deciding(gateway, caller):
        return load_proxy(gateway).facts()


def set_proxy(
    gateway: Gateway,
    mode: ProxyMode,
    *,
    url: str | None = None,
    user: str | None = None,
    password: Secret | None = None,
    no_proxy: str | None = None,
    caller: Caller | None = None,
) -> ProxySettings:
    """Store new settings (``none`` clears them); recorded.  ``InvalidInputError``
    for a URL, user, password or NO_PROXY list gwvault refuses, before anything is written."""
    if mode == "none":
        clear_proxy(gateway, caller=caller)
        return ProxySettings()
    if mode == "system":
        if url is not None or user is not None or password is not None or no_proxy is not None:
            raise InvalidInputError(
                "the system proxy comes from the service's HTTPS_PROXY and NO_PROXY;"
                " --url, --user, a password and --no-proxy are for a custom proxy"
            )
        stored: dict[str, Any] = {"mode": "system"}
        route = None
    else:
        if url is None:
            raise InvalidInputError("a custom proxy needs --url http://HOST:PORT")
        host, port = parse_proxy_url(url)
        if password is not None:
            check_proxy_password(password)
        route = ProxyRoute(host, port, None if user is None else check_proxy_user(user))
        stored = {"mode": "custom", "host": host, "port": port, "user": route.user,
                  "password": None, "no_proxy": list(parse_no_proxy(no_proxy or ""))}  # fmt: skip
    with _deciding(gateway, caller):
        if route is not None and password is not None:
            stored["password"] = _wrapped(gateway, gateway.master_key, route, password)
        gateway.rows.set_setting(SETTING, canonical_json(stored))
        gateway.audit.record(
            SET, gateway.gateway_id, mode=mode, proxy=proxy_named(stored),
            user=stored.get("user"), password="set" if password is not None else "none",
            no_proxy=",".join(stored.get("no_proxy", [])),
        )  # fmt: skip
    return load_proxy(gateway)


def clear_proxy(gateway: Gateway, *, caller: Caller | None = None) -> bool:
    """Go back to direct connections; recorded with the mode and proxy the trail last
    set.  Works on a row a database writer changed or deleted too (the way back to
    a usable vault).  False when no proxy was set."""
    with _deciding(gateway, caller):
        stored_at_all = gateway.store.setting(SETTING) is not None  # unchecked: it goes
        latest = gateway.rows.latest_audited(gateway.gateway_id, (SET, CLEARED))
        last_set = latest[1] if latest is not None and latest[0] == SET else None
        if not stored_at_all and last_set is None:
            return False
        gateway.store.delete_setting(SETTING)
        gateway.audit.record(CLEARED, gateway.gateway_id, mode=(last_set or {}).get("mode"),
                             proxy=(last_set or {}).get("proxy"))  # fmt: skip
    return True


def rewrap_proxy_password(gateway: Gateway, new: MasterKey) -> int:
    """Move the password to GMK ``new`` (inside the rotation's write); 1 if it moved."""
    stored = stored_setting(gateway)
    if stored is None or stored["mode"] != "custom" or stored["password"] is None:
        return 0
    route, wrapped = route_of(stored)
    if wrapped is None or wrapped[0] == new.version:
        return 0
    context = proxy_password_context(gateway.gateway_id, route)
    password = gateway.master_key_for(wrapped[0]).unwrap(wrapped[1], context)
    stored["password"] = _wrapped(gateway, new, route, password)
    gateway.rows.set_setting(SETTING, canonical_json(stored))
    return 1


def _wrapped(
    gateway: Gateway, gmk: MasterKey, route: ProxyRoute, password: Secret
) -> dict[str, Any]:
    context = proxy_password_context(gateway.gateway_id, route)
    blob = gmk.wrap(password, context, gateway.context.random)
    return {"gmk_version": gmk.version, "wrapped": base64.b64encode(blob).decode("ascii")}


def _deciding(gateway: Gateway, caller: Caller | None) -> AbstractContextManager[None]:
    return admin_write(gateway, caller, "proxy.manage", SETTING)
