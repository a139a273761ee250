"""An empty PostgreSQL database to move a vault into, a vault worth moving, and
the steps of a move that the tests take one by one.

``empty_store``: ``fresh_store_login`` (a role that owns a fresh database on the
session's private cluster, which checks passwords and serves TLS; no
superuser, as a store login should not be), with what an admin hands
``gwvault store migrate``: a URL without the password, and the password alone
in a 0600 file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from agent_keys.gateway_identity import KeyType
from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.postgres_servers import StoreLogin
from vault.access.accounts import Accounts
from vault.access.grants import AccessGrants
from vault.access.policy import Principal
from vault.audit.log import AuditLog
from vault.credentials import CredentialService
from vault.data_dir import DataDir
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.keys.keystore_binding import no_pin, open_bound_keystore
from vault.store.copying import copy_tables, schema_statements
from vault.store.engine import StoreEngine
from vault.store.locator import PostgresLocation
from vault.store.postgres_engine import PostgresEngine
from vault.store.vault_store import VaultStore


@dataclass(frozen=True)
class StoreTarget:
    """An empty database: its owner's login, and that password alone in a 0600 file."""

    store: StoreLogin
    password_file: Path

    @property
    def password(self) -> str:
        return self.store.login.password

    @property
    def display(self) -> str:
        """How gwvault names the database in messages and audit entries."""
        login = self.store.login
        return f"postgresql://{login.user}@{login.host}:{login.port}/{login.database}"

    @property
    def url(self) -> str:
        """What an admin passes to ``--to``: no password, TLS verified against the CA."""
        login = self.store.login
        return (
            f"postgresql://{login.user}@{login.host}:{login.port}/{login.database}"
            f"?sslmode=verify-full&sslrootcert={self.store.ca_file}"
        )

    @property
    def location(self) -> PostgresLocation:
        """The tests' own way in (their libpq passfile, never a data dir's)."""
        return PostgresLocation(self.store.conninfo)


@pytest.fixture
def empty_store(fresh_store_login: StoreLogin, tmp_path: Path) -> StoreTarget:
    password_file = tmp_path / f"store-password-{os.urandom(3).hex()}"
    password_file.write_text(fresh_store_login.login.password + "\n")
    password_file.chmod(0o600)
    return StoreTarget(fresh_store_login, password_file)


@dataclass(frozen=True)
class FilledVault:
    """A data dir whose vault ``fill_vault`` filled, and what it put in."""

    path: Path
    credentials: dict[str, str]  # name -> secret
    session_id: str


@pytest.fixture(scope="session")
def filled_template(
    vault_templates: dict[KeyType, Path], tmp_path_factory: pytest.TempPathFactory
) -> FilledVault:
    """One filled vault for the session (hashing a user's password takes a while)."""
    path = tmp_path_factory.mktemp("filled") / "data"
    shutil.copytree(vault_templates["ec-p256"], path)
    return fill_vault(path)


@pytest.fixture
def filled(filled_template: FilledVault, tmp_path: Path) -> FilledVault:
    """A fresh copy of the filled vault."""
    path = tmp_path / "filled"
    shutil.copytree(filled_template.path, path)
    return replace(filled_template, path=path)


@pytest.fixture
def target_db(empty_store: StoreTarget) -> Iterator[PostgresEngine]:
    """The tests' own connection to the empty database (to set up, look and tamper)."""
    location = empty_store.location
    engine = PostgresEngine(location.conninfo, location.display)
    yield engine
    engine.close()


def fill_vault(data_dir: Path) -> FilledVault:
    """Rows in every kind of table a single machine writes: credentials, a user
    with a web session (a blob key, a foreign key), an API token, and a signed
    audit checkpoint (a numbered row PostgreSQL must not number again)."""
    secrets = {f"sales-{n}": f"pw-{n}-{os.urandom(4).hex()}" for n in range(3)}
    with Gateway.open(data_dir, make_context()) as gateway:
        service = CredentialService(gateway)
        for name, secret in secrets.items():
            source = DataSource("postgresql", "127.0.0.1:5432", name)
            service.put(name, source, CredentialPayload("basic", "ada", Secret.from_text(secret)))
        accounts = Accounts(gateway)
        accounts.add_user("ada", "admin", Secret.from_text("a long enough password 1"))
        session_id, _ = accounts.open_session(Principal("user", "ada", "admin"))
        AccessGrants(gateway).create_token("deploy", "creator")
        AuditLog(gateway).export(lambda lines: sum(1 for _ in lines))
    return FilledVault(data_dir, secrets, session_id)


def make_schema(source: StoreEngine, target: PostgresEngine) -> None:
    """The schema and the vault's settings in one transaction, as migrate makes them."""
    statements = schema_statements("postgresql")
    target.create_schema(statements, None, fill=lambda: copy_tables(source, target, ["settings"]))


def opened_through(data_dir: Path, engine: StoreEngine) -> Gateway:
    """The vault as ``engine`` holds it, unlocked by the data dir's keystore."""
    store = VaultStore(engine)
    keystore = open_bound_keystore(DataDir(data_dir), store, make_context().random, no_pin)
    return Gateway(DataDir(data_dir), store, keystore, make_context())
