"""Shared fixtures: fresh data dirs, initialised vaults, a canary secret, fixed clocks.

Initialising a vault runs Argon2id at its production floor (256 MiB, 3 passes,
about 0.7 s), so each key type's vault is made once per session and copied
for every test that needs one.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_keys.gateway_identity import KeyType
from agent_keys.secret import Secret
from vault.audit.coalesce import COALESCER
from vault.context import RequestContext
from vault.gateway import Gateway

pytest_plugins = [
    "tests.service_fixtures",
    "tests.postgres_servers",
    "tests.mariadb_fixtures",
    "tests.softhsm_fixtures",
    "tests.browser_fixtures",
    "tests.web_fixtures",
    "tests.store_targets",
]

RECOVERY_KEY = "orbit walnut trellis quasar lantern 42"
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
def vault_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[KeyType, Path]:
    """One initialised vault per key type, made once; tests get copies."""
    templates: dict[KeyType, Path] = {}
    for key_type in ("ec-p256", "rsa-3072"):
        path = tmp_path_factory.mktemp("template") / "data"
        Gateway.initialize(
            path, "gw-test", key_type, Secret.from_text(RECOVERY_KEY), make_context()
        ).close()
        templates[key_type] = path
    return templates


@pytest.fixture(params=["ec-p256", "rsa-3072"])
def key_type(request: pytest.FixtureRequest) -> KeyType:
    value: KeyType = request.param
    return value


@pytest.fixture
def data_dir(vault_templates: dict[KeyType, Path], tmp_path: Path) -> Path:
    """A fresh copy of the EC P-256 vault."""
    return _copy_vault(vault_templates["ec-p256"], tmp_path)


@pytest.fixture
def any_data_dir(vault_templates: dict[KeyType, Path], key_type: KeyType, tmp_path: Path) -> Path:
    """A fresh copy of a vault of each key type (parametrised)."""
    return _copy_vault(vault_templates[key_type], tmp_path)


@pytest.fixture
def gateway(data_dir: Path) -> Iterator[Gateway]:
    with Gateway.open(data_dir, make_context()) as opened:
        yield opened


def _copy_vault(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(template, target)
    target.chmod(0o700)
    return target


@pytest.fixture(autouse=True)
def quiet_audit_coalescer() -> Iterator[None]:
    """Each test starts with no anonymous events counted: every copied vault has
    the template's gateway id, and the counts are per process (vault.audit.coalesce)."""
    COALESCER.reset()
    yield
    COALESCER.reset()
