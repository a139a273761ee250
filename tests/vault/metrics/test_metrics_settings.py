"""The scrape token and the per-credential switch: stored sealed, audited, and
refused when put back or written outside gwvault (T-MET-1, T-MET-2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_keys.errors import InvalidInputError
from tests.conftest import make_context
from tests.store_engines import EngineVaults
from vault.access.row_seal import TamperedRowError
from vault.gateway import Gateway
from vault.metrics.settings import (
    PER_CREDENTIAL_SETTING,
    TOKEN_SETTING,
    load_metrics_settings,
    new_scrape_token,
    parse_switch,
    revoke_scrape_token,
    set_per_credential,
)


def _open(data_dir: Path) -> Gateway:
    return Gateway.open(data_dir, make_context())


def _setting_row(vaults: EngineVaults, data_dir: Path, key: str) -> tuple[object, ...]:
    with vaults.sql(data_dir) as sql:
        return sql.one("SELECT value, mac FROM settings WHERE key = ?", [key])


def _put_back(vaults: EngineVaults, data_dir: Path, key: str, row: tuple[object, ...]) -> None:
    with vaults.sql(data_dir, attacker=True) as sql:
        sql.execute("UPDATE settings SET value = ?, mac = ? WHERE key = ?", [*row, key])


@pytest.mark.contract
def test_each_change_is_an_entry_and_only_the_tokens_hash_is_stored(
    data_dir: Path, vaults: EngineVaults
) -> None:
    with _open(data_dir) as gateway:
        assert load_metrics_settings(gateway).view() == {
            "scrape_token": False, "per_credential": False,
        }  # fmt: skip
        first = new_scrape_token(gateway)
        second = new_scrape_token(gateway)
        settings = set_per_credential(gateway, on=True)
        assert settings.accepts(second) and not settings.accepts(first)
        assert not settings.accepts(second + "x") and not settings.accepts(second[4:])
        revoked = revoke_scrape_token(gateway)
        assert not revoked.accepts(second) and revoked.per_credential
        entries = gateway.store.find_audit("action = ?", ["metrics.changed"], limit=10)
    assert len(entries) == 4
    with vaults.sql(data_dir) as sql:
        assert not sql.holds(first.encode()) and not sql.holds(second.encode())


@pytest.mark.contract
@pytest.mark.parametrize("key", [TOKEN_SETTING, PER_CREDENTIAL_SETTING])
def test_a_setting_put_back_from_an_older_copy_is_refused(
    data_dir: Path, vaults: EngineVaults, key: str
) -> None:
    with _open(data_dir) as gateway:
        new_scrape_token(gateway)
        set_per_credential(gateway, on=True)
    older = _setting_row(vaults, data_dir, key)  # the revoked token; names switched on
    with _open(data_dir) as gateway:
        revoke_scrape_token(gateway)
        set_per_credential(gateway, on=False)
    _put_back(vaults, data_dir, key, older)
    with _open(data_dir) as gateway, pytest.raises(TamperedRowError):
        load_metrics_settings(gateway)


@pytest.mark.contract
def test_a_setting_written_without_the_key_is_refused(data_dir: Path, vaults: EngineVaults) -> None:
    with _open(data_dir) as gateway:
        set_per_credential(gateway, on=False)
    (_value, mac) = _setting_row(vaults, data_dir, PER_CREDENTIAL_SETTING)
    _put_back(vaults, data_dir, PER_CREDENTIAL_SETTING, ("on", mac))
    with _open(data_dir) as gateway, pytest.raises(TamperedRowError):
        load_metrics_settings(gateway)


@pytest.mark.parametrize("typed", ["", "ON", "yes", "1", "on ", "of"])
def test_the_switch_is_on_or_off(typed: str) -> None:
    with pytest.raises(InvalidInputError, match="on or off"):
        parse_switch(typed)
