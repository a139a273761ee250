"""Shared fixtures: fresh data dirs, initialised vaults, a canary secret, fixed clocks.

Initialising a vault runs Argon2id at its production floor (256 MiB, 3 passes,
about 0.7 s), so each key type's vault is made once per session and copied
for every test that needs one.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agent_keys.gateway_identity import KeyType
from agent_keys.secret import Secret
from vault.audit.coalesce import COALESCER
from vault.context import RequestContext
from vault.gateway import Gateway

if TYPE_CHECKING:
    from tests.store_engines import EngineVaults, SqliteVaults

pytest_plugins = [
    "tests.service_fixtures",
    "tests.postgres_servers",
    "tests.store_engines",
    "tests.mariadb_fixtures",
    "tests.softhsm_fixtures",
    "tests.browser_fixtures",
    "tests.web_fixtures",
    "tests.store_targets",
    "tests.audit_collector",
    "tests.rsyslog_fixtures",
    "tests.proxy_fixtures",
]

RECOVERY_KEY = "orbit walnut trellis quasar lantern 42"
KEY_TYPES: tuple[KeyType, ...] = ("ec-p256", "rsa-3072")
CANARY = "CANARY-7f3e9a1c-pa55w0rd-d0-not-leak"


def fixed_clock(moment: datetime.datetime) -> Callable[[], datetime.datetime]:
    return lambda: moment


def make_context(actor: str = "test:alice") -> RequestContext:
    return RequestContext(actor=actor, channel="cli")


@pytest.fixture(scope="session")
def recovery_key() -> Secret:
    return Secret.from_text(RECOVERY_KEY)


@pytest.fixture(scope="session")
def canary() -> str:
    return CANARY


@pytest.fixture(scope="session")
def vault_templates(sqlite_vaults: SqliteVaults) -> dict[KeyType, Path]:
    """One initialised SQLite vault per key type, made once; tests get copies."""
    return {key_type: sqlite_vaults.initialized(key_type) for key_type in KEY_TYPES}


@pytest.fixture(params=KEY_TYPES)
def key_type(request: pytest.FixtureRequest) -> KeyType:
    value: KeyType = request.param
    return value


@pytest.fixture
def data_dir(
    vaults: EngineVaults, copy_vault: Callable[[Path, Path], Path], tmp_path: Path
) -> Path:
    """A fresh copy of the EC P-256 vault."""
    return copy_vault(vaults.initialized("ec-p256"), tmp_path / "data")


@pytest.fixture
def any_data_dir(
    vaults: EngineVaults,
    copy_vault: Callable[[Path, Path], Path],
    key_type: KeyType,
    tmp_path: Path,
) -> Path:
    """A fresh copy of a vault of each key type (parametrised)."""
    return copy_vault(vaults.initialized(key_type), tmp_path / "data")


@pytest.fixture
def gateway(data_dir: Path) -> Iterator[Gateway]:
    with Gateway.open(data_dir, make_context()) as opened:
        yield opened


@pytest.fixture(autouse=True)
def quiet_audit_coalescer() -> Iterator[None]:
    """Each test starts with no anonymous events counted: every copied vault has
    the template's gateway id, and the counts are per process (vault.audit.coalesce)."""
    COALESCER.reset()
    yield
    COALESCER.reset()
