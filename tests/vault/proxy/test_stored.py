"""The proxy settings as stored: sealed, the password wrapped and never shown, audited, admin-only.

A database writer without the key can point gwvault's HTTPS traffic neither at
a proxy of theirs (an edited row), nor back at an older proxy (a sealed copy
put back), nor straight past the proxy (the row deleted behind a proxy.set).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_keys.errors import AccessDeniedError, InvalidInputError
from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.store_engines import EngineVaults
from tests.vault.access.test_accounts import PASSWORD
from tests.vault.access.test_row_seal import _put_back, _row_copy
from vault.access.accounts import Accounts
from vault.access.bearer_secrets import bearer_hash
from vault.access.callers import Caller, Grant
from vault.access.destination_policy import policy_for
from vault.access.row_seal import TamperedRowError
from vault.connectors.proxy_route import ProxyRoute
from vault.format.strict_json import parse_json_object
from vault.gateway import Gateway
from vault.keys.rotation import KeyRotation
from vault.proxy.loading import load_proxy
from vault.proxy.settings import ProxySettings
from vault.proxy.stored import clear_proxy, set_proxy

PROXY_PW = "CANARY-proxy-pw-5b1f"
URL = "http://proxy.example.org:3128"


def _custom(gateway: Gateway, url: str = URL) -> ProxySettings:
    return set_proxy(gateway, "custom", url=url, user="gw", no_proxy=".internal,10.0.0.0/8",
                     password=Secret.from_text(PROXY_PW))  # fmt: skip


def _entries(gateway: Gateway, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.action, parse_json_object(e.details))
            for e in gateway.store.audit_events() if e.action.startswith(prefix)]  # fmt: skip


def test_a_custom_proxy_is_stored_sealed_its_password_wrapped_and_never_shown(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults
) -> None:
    settings = _custom(gateway)
    route = ProxyRoute("proxy.example.org", 3128, "gw", Secret.from_text(PROXY_PW))
    assert settings.route == route and settings.no_proxy == (".internal", "10.0.0.0/8")
    assert load_proxy(gateway).route_for("api.example.org") == route
    assert load_proxy(gateway).route_for("db.internal") is None
    assert policy_for(gateway, any_network=False).proxy == settings  # tests use it
    facts = load_proxy(gateway).facts()
    assert facts == {"mode": "custom", "proxy": URL, "user": "gw", "password": "set",
                     "no_proxy": [".internal", "10.0.0.0/8"], "problem": None}  # fmt: skip
    assert _entries(gateway, "proxy.") == [("proxy.set", {
        "mode": "custom", "proxy": "proxy.example.org:3128", "user": "gw", "password": "set",
        "no_proxy": ".internal,10.0.0.0/8"})]  # fmt: skip
    assert clear_proxy(gateway) and load_proxy(gateway) == ProxySettings()
    assert not clear_proxy(gateway)  # nothing to clear: nothing recorded
    assert [a for a, _ in _entries(gateway, "proxy.")] == ["proxy.set", "proxy.cleared"]
    gateway.close()
    with vaults.sql(data_dir) as db:
        assert not db.holds(PROXY_PW.encode())


def test_the_system_mode_takes_no_address_and_reads_the_environment(gateway: Gateway) -> None:
    with pytest.raises(InvalidInputError, match="for a custom proxy"):
        set_proxy(gateway, "system", url=URL)
    set_proxy(gateway, "system")
    env = {"HTTPS_PROXY": URL, "NO_PROXY": "localhost", "PATH": "/bin"}
    settings = load_proxy(gateway, env)
    assert settings.mode == "system" and dict(settings.environment) == {
        "HTTPS_PROXY": URL, "NO_PROXY": "localhost"}  # fmt: skip
    assert settings.route_for("localhost") is None
    assert settings.route_for("api.example.org") == ProxyRoute("proxy.example.org", 3128)
    assert _entries(gateway, "proxy.")[-1][1]["proxy"] == "environment"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"url": "http://u:p@proxy.example.org:3128"}, "no user or password"),
        ({"url": "http://proxy.example.org:99999"}, "port"),
        ({"url": None}, "needs --url"),
        ({"user": "a:b"}, "no ':'"),
        ({"no_proxy": "host:80"}, "NO_PROXY"),
        ({"password": Secret(b"a\r\nX-Injected: 1")}, "line breaks"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    gateway: Gateway, changes: dict[str, Any], says: str
) -> None:
    _custom(gateway)
    before = (load_proxy(gateway), len(gateway.store.audit_events()))
    given: dict[str, Any] = {
        "url": "http://other.example.org:8080",
        "user": "gw",
        "password": Secret.from_text("x"),
        "no_proxy": None,
    } | changes
    with pytest.raises(InvalidInputError, match=says):
        set_proxy(gateway, "custom", **given)
    assert (load_proxy(gateway), len(gateway.store.audit_events())) == before


def test_a_proxy_row_pointed_elsewhere_in_the_database_is_refused(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults
) -> None:
    _custom(gateway)
    gateway.close()
    with vaults.sql(data_dir, attacker=True) as db:
        db.execute(
            "UPDATE settings SET value = replace(value, 'proxy.example.org', 'evil.example')"
            " WHERE key = 'proxy'"
        )
    with Gateway.open(data_dir, make_context()) as reopened:
        with pytest.raises(TamperedRowError, match="changed outside gwvault"):
            load_proxy(reopened)
        with pytest.raises(TamperedRowError):
            policy_for(reopened, any_network=True)  # no test runs, direct or otherwise
        refused = [e.target for e in reopened.store.audit_events()
                   if e.action == "integrity.row-refused"]  # fmt: skip
        assert refused == ["settings:proxy", "settings:proxy"]


def test_an_older_sealed_copy_or_a_deleted_row_is_refused(gateway: Gateway, data_dir: Path) -> None:
    _custom(gateway)
    copy = _row_copy(data_dir, "settings")
    _custom(gateway, "http://newer.example.org:3128")
    _put_back(data_dir, "settings", copy)  # the old proxy, with its old valid seal
    with pytest.raises(TamperedRowError):
        load_proxy(gateway)
    with gateway.store.write():
        gateway.store.delete_setting("proxy")  # the trail still says proxy.set
    with pytest.raises(TamperedRowError):
        load_proxy(gateway)
    assert clear_proxy(gateway)  # an admin's way back: direct, recorded
    assert load_proxy(gateway) == ProxySettings()
    assert _entries(gateway, "proxy.cleared")[-1][1] == {
        "mode": "custom", "proxy": "newer.example.org:3128"}  # fmt: skip
    _custom(gateway, "http://third.example.org:3128")
    _put_back(data_dir, "settings", copy)
    with pytest.raises(TamperedRowError):
        load_proxy(gateway)
    set_proxy(gateway, "system")  # setting it again is the other way back
    assert load_proxy(gateway).mode == "system"


def test_a_rotation_rewraps_the_proxy_password(gateway: Gateway, recovery_key: Secret) -> None:
    _custom(gateway)
    KeyRotation(gateway).rotate(recovery_key)
    stored = json.loads(gateway.store.setting("proxy") or "{}")
    assert stored["password"]["gmk_version"] == 2
    route = load_proxy(gateway).route
    assert route is not None and route.password == Secret.from_text(PROXY_PW)


def test_only_an_admin_may_change_the_proxy(gateway: Gateway) -> None:
    accounts = Accounts(gateway)
    accounts.add_user("cleo", "creator", Secret.from_text(PASSWORD))
    principal = accounts.sign_in("cleo", Secret.from_text(PASSWORD))
    cookie, _ = accounts.open_session(principal)
    creator = Caller(principal, Grant("session", bearer_hash(cookie)))
    with pytest.raises(AccessDeniedError):
        set_proxy(gateway, "custom", url=URL, caller=creator)
    with pytest.raises(AccessDeniedError):
        clear_proxy(gateway, caller=creator)
    assert load_proxy(gateway) == ProxySettings()
    refused = [parse_object["refused_action"] for parse_object in (
        parse_json_object(e.details) for e in gateway.store.audit_events()
        if e.action == "access.refused")]  # fmt: skip
    assert refused == ["proxy.manage", "proxy.manage"]
