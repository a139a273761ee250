"""Where connection tests may go: the admin's allow-list, kept as vault settings.

Two settings, loaded and saved here only (sealed rows, ``vault.access.row_seal``,
and this is the one place to add it):

- networks that tests by callers who are not admins may reach although the
  default refuses them (loopback, link-local, metadata; threat T-CN-2), each
  optionally for one port;
- directories under which SQLite tests may look at files (none by default, so
  every SQLite test is refused; threat T-CN-4).

``policy_for`` builds a test's ``DestinationPolicy``: these settings, the
vault's data dir as protected, the admin's proxy (``vault.proxy``), and for
admins no address checks.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import InvalidInputError, NotFoundError, StorageError
from vault.connectors.destinations import AllowedNetwork, DestinationPolicy
from vault.format.strict_json import parse_json_object
from vault.gateway import Gateway
from vault.proxy.loading import load_proxy

NETWORKS_SETTING = "tests_allowed_networks"
SQLITE_DIRS_SETTING = "tests_sqlite_dirs"
MAX_ENTRIES = 64


@dataclass(frozen=True)
class AllowLists:
    """The two allow-lists as stored."""

    networks: tuple[AllowedNetwork, ...] = ()
    sqlite_dirs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed_networks": [str(entry) for entry in self.networks],
            "sqlite_dirs": list(self.sqlite_dirs),
        }


def load_test_destinations(gateway: Gateway) -> AllowLists:
    """The stored allow-lists, checked; ``StorageError`` if a setting is damaged."""
    networks = tuple(_network_from_json(item) for item in _json_list(gateway, NETWORKS_SETTING))
    directories = tuple(
        _checked_dir_text(item) for item in _json_list(gateway, SQLITE_DIRS_SETTING)
    )
    return AllowLists(networks, directories)


def policy_for(gateway: Gateway, *, any_network: bool) -> DestinationPolicy:
    """The destination policy of one test: admins (``any_network``) skip the address checks."""
    stored = load_test_destinations(gateway)
    policy = DestinationPolicy(
        allowed=stored.networks,
        sqlite_dirs=stored.sqlite_dirs,
        protected_dirs=(os.path.realpath(gateway.data_dir.path),),
        proxy=load_proxy(gateway),
    )
    return policy.for_admin() if any_network else policy


def allow_network(gateway: Gateway, entry: AllowedNetwork) -> AllowLists:
    """Add ``entry`` to the networks tests may reach; recorded."""
    with gateway.store.write():
        current = load_test_destinations(gateway)
        if entry in current.networks:
            return current
        changed = AllowLists((*current.networks, entry), current.sqlite_dirs)
        _save(gateway, changed, "allow-network", str(entry))
    return changed


def remove_network(gateway: Gateway, entry: AllowedNetwork) -> AllowLists:
    """Remove ``entry``; ``NotFoundError`` if it is not listed."""
    with gateway.store.write():
        current = load_test_destinations(gateway)
        if entry not in current.networks:
            raise NotFoundError(f"{entry} is not allowed; see: gwvault test-policy show")
        kept = tuple(n for n in current.networks if n != entry)
        changed = AllowLists(kept, current.sqlite_dirs)
        _save(gateway, changed, "remove-network", str(entry))
    return changed


def allow_sqlite_dir(gateway: Gateway, directory: str) -> AllowLists:
    """Let SQLite tests look under ``directory`` (an existing directory, outside the
    vault's data dir; stored with its symbolic links resolved); recorded."""
    resolved = os.path.realpath(directory)
    if not stat.S_ISDIR(_stat(resolved).st_mode):
        raise InvalidInputError(f"{directory} is not a directory")
    data_dir = os.path.realpath(gateway.data_dir.path)
    if _within(resolved, data_dir):
        raise InvalidInputError(f"{directory} is (inside) the vault's data directory")
    with gateway.store.write():
        current = load_test_destinations(gateway)
        if resolved in current.sqlite_dirs:
            return current
        changed = AllowLists(current.networks, (*current.sqlite_dirs, resolved))
        _save(gateway, changed, "allow-sqlite-dir", resolved)
    return changed


def remove_sqlite_dir(gateway: Gateway, directory: str) -> AllowLists:
    """Stop allowing ``directory`` (as given or resolved); ``NotFoundError`` if not listed."""
    with gateway.store.write():
        current = load_test_destinations(gateway)
        listed = next(
            (d for d in current.sqlite_dirs if d in (directory, os.path.realpath(directory))), None
        )
        if listed is None:
            raise NotFoundError(f"{directory} is not allowed; see: gwvault test-policy show")
        kept = tuple(d for d in current.sqlite_dirs if d != listed)
        changed = AllowLists(current.networks, kept)
        _save(gateway, changed, "remove-sqlite-dir", listed)
    return changed


def _save(gateway: Gateway, destinations: AllowLists, change: str, value: str) -> None:
    if max(len(destinations.networks), len(destinations.sqlite_dirs)) > MAX_ENTRIES:
        raise InvalidInputError(f"at most {MAX_ENTRIES} entries per list")
    networks = [
        {"network": str(entry.network), "port": entry.port} for entry in destinations.networks
    ]
    # Sealed settings (vault.access.row_seal): a database writer cannot widen them.
    gateway.rows.set_setting(NETWORKS_SETTING, json.dumps({"items": networks}))
    gateway.rows.set_setting(
        SQLITE_DIRS_SETTING, json.dumps({"items": list(destinations.sqlite_dirs)})
    )
    gateway.audit.record("test-policy.changed", gateway.gateway_id, change=change, value=value)


def _json_list(gateway: Gateway, key: str) -> list[Any]:
    raw = gateway.rows.setting(key)  # TamperedRowError if a database writer changed it
    if raw is None:
        return []
    try:
        value = parse_json_object(raw).get("items")
    except ValueError:
        value = None
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise _damaged(key)
    return value


def _network_from_json(item: Any) -> AllowedNetwork:
    if not isinstance(item, dict) or set(item) != {"network", "port"}:
        raise _damaged(NETWORKS_SETTING)
    port = item["port"]
    if not isinstance(item["network"], str) or not (port is None or type(port) is int):
        raise _damaged(NETWORKS_SETTING)
    try:
        return AllowedNetwork.parse(item["network"], port)
    except InvalidInputError as e:
        raise _damaged(NETWORKS_SETTING) from e


def _checked_dir_text(item: Any) -> str:
    # What allow_sqlite_dir stores: absolute, normal form.
    if not isinstance(item, str) or not item.startswith("/") or posixpath.normpath(item) != item:
        raise _damaged(SQLITE_DIRS_SETTING)
    return item


def _damaged(key: str) -> StorageError:
    # Fail closed and loud: a test must not run on a half-read allow-list.
    return StorageError(
        f"the vault setting {key} is damaged; no connection test runs until an admin sets it"
        " again (gwvault test-policy)"
    )


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as e:
        raise InvalidInputError(f"cannot use {path}: {e.strerror}") from e


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")
