"""Rows that decide access are sealed: a database writer without the key changes
nothing that counts (the trust review, item 4; T-DB-1).

Each test writes ``vault.db`` with plain SQL, as someone who can write the file
but holds no key would, and shows the change is refused and recorded.  Before
the seals, every one of these worked and ``audit verify`` said OK.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, IntegrityError
from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.vault.audit.trails import forged_identity
from tests.vault.store.old_schemas import copy_schema_3_vault, schema_3_token
from vault.access.accounts import Accounts
from vault.access.bearer_secrets import bearer_hash
from vault.access.endpoint_settings import EndpointSettings, load_endpoint, save_endpoint
from vault.access.grants import TOKEN_PREFIX, AccessGrants
from vault.access.row_seal import REFUSED_ACTION, SEALED_ACTION, TamperedRowError
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway

PASSWORD = "a long enough sign-in phrase 4"
PLANTED_TOKEN = TOKEN_PREFIX + "planted-by-someone-who-can-write-the-file-0001"
MYSQL = DataSource("mysql", "db.internal")


@contextmanager
def file_writer(data_dir: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(data_dir / "vault.db")) as db:
        yield db
        db.commit()


def _refusals(data_dir: Path) -> list[str | None]:
    with Gateway.open(data_dir, make_context()) as gateway:
        return [e.target for e in gateway.store.audit_events() if e.action == REFUSED_ACTION]


def test_a_planted_api_token_is_no_token(data_dir: Path) -> None:
    with file_writer(data_dir) as db:
        db.execute(
            "INSERT INTO api_tokens (name, role, token_hash, created_by, created_at)"
            " VALUES ('ops', 'admin', ?, 'os:root', '2026-12-01T00:00:00+00:00')",
            [bearer_hash(PLANTED_TOKEN)],
        )
    with Gateway.open(data_dir, make_context()) as gateway:
        with pytest.raises(TamperedRowError, match="api_tokens row ops"):
            AccessGrants(gateway).principal_for_token(PLANTED_TOKEN)
        with pytest.raises(TamperedRowError):
            AccessGrants(gateway).tokens()
    assert _refusals(data_dir) == ["api_tokens:ops", "api_tokens:ops"]


def test_a_revoked_token_cannot_be_brought_back(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        token = AccessGrants(gateway).create_token("etl", "creator")
        AccessGrants(gateway).revoke_token("etl")
    with file_writer(data_dir) as db:
        db.execute("UPDATE api_tokens SET revoked_at = NULL, role = 'admin'")
    with Gateway.open(data_dir, make_context()) as gateway, pytest.raises(TamperedRowError):
        AccessGrants(gateway).principal_for_token(token)


@pytest.mark.parametrize("change", ["promote", "plant"])
def test_a_promoted_or_planted_user_cannot_sign_in(data_dir: Path, change: str) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        Accounts(gateway).add_user("cleo", "creator", Secret.from_text(PASSWORD))
    with file_writer(data_dir) as db:
        if change == "promote":
            db.execute("UPDATE users SET role = 'admin' WHERE name = 'cleo'")
        else:  # a user of the writer's own, with a hash of a password they know
            (known,) = db.execute("SELECT password_hash FROM users").fetchone()
            db.execute(
                "INSERT INTO users (name, role, password_hash, created_at)"
                " VALUES ('mallory', 'admin', ?, '2026-12-01T00:00:00+00:00')",
                [known],
            )
    name = "cleo" if change == "promote" else "mallory"
    with Gateway.open(data_dir, make_context()) as gateway:
        with pytest.raises(AccessDeniedError, match="wrong user name or password"):
            Accounts(gateway).sign_in(name, Secret.from_text(PASSWORD))
        with pytest.raises(TamperedRowError):
            Accounts(gateway).users()
    assert f"users:{name}" in _refusals(data_dir)


def test_a_planted_session_signs_nobody_in(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        accounts = Accounts(gateway)
        accounts.add_user("ada", "admin", Secret.from_text(PASSWORD))
        cookie, _ = accounts.open_session(accounts.sign_in("ada", Secret.from_text(PASSWORD)))
        assert accounts.session(cookie) is not None
    planted = "a-session-id-the-writer-chose"
    with file_writer(data_dir) as db:
        db.execute(
            "INSERT INTO web_sessions (id_hash, user_name, csrf_token, created_at, expires_at)"
            " VALUES (?, 'ada', 'x', '2026-12-01T00:00:00+00:00', '2099-01-01T00:00:00+00:00')",
            [bearer_hash(planted)],
        )
        db.execute("UPDATE web_sessions SET expires_at = '2099-01-01T00:00:00+00:00'")
    with Gateway.open(data_dir, make_context()) as gateway:
        for session_id in (planted, cookie):  # planted, and extended past its end
            with pytest.raises(TamperedRowError):
                Accounts(gateway).session(session_id)


def test_a_swapped_certificate_is_never_handed_to_sealers(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        gateway_id, real = gateway.gateway_id, gateway.certificate()
    _key, theirs = forged_identity(gateway_id)  # names this gateway; the writer's own key
    with file_writer(data_dir) as db:
        db.execute(
            "UPDATE gateway_keys SET cert_pem = ?, thumbprint = ? WHERE state = 'current'",
            [theirs.pem.decode("ascii"), theirs.thumbprint],
        )
    with Gateway.open(data_dir, make_context()) as gateway:
        with pytest.raises(TamperedRowError, match="gateway_keys"):
            gateway.certificate()
        with pytest.raises(TamperedRowError):
            gateway.private_keys  # noqa: B018 - the property is what opens the keys
    assert theirs.thumbprint != real.thumbprint


@pytest.mark.parametrize("wrapped", ["before schema 4", "now"])
def test_a_certificate_that_is_not_its_keys_is_refused_even_when_its_row_verifies(
    data_dir: Path, tmp_path: Path, wrapped: str
) -> None:
    # Three locks: the row's seal; a key wrapped now names its certificate, so it
    # does not open as another's; and an opened key must be its certificate's
    # (what holds for keys wrapped before schema 4).  Here the seal is made right,
    # as no file writer can, to reach the others.
    vault = copy_schema_3_vault(tmp_path / "old") if wrapped == "before schema 4" else data_dir
    with Gateway.open(vault, make_context()) as gateway:
        _key, theirs = forged_identity(gateway.gateway_id)
        with gateway.store.write():
            gateway.store.execute(
                "UPDATE gateway_keys SET cert_pem = ?, thumbprint = ? WHERE state = 'current'",
                [theirs.pem.decode("ascii"), theirs.thumbprint],
            )
            gateway.rows.reseal("gateway_keys", 1)
        # Before schema 4 the key opens and the key check refuses; now the unwrap does.
        refused = TamperedRowError if wrapped == "before schema 4" else IntegrityError
        with pytest.raises(refused):
            gateway.private_keys  # noqa: B018 - the property is what opens the keys


def test_a_credentials_owner_cannot_be_changed_in_the_file(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context("user:cleo")) as gateway:
        CredentialService(gateway).put("sales", MYSQL, _login("pw-1"))
    with file_writer(data_dir) as db:
        db.execute("UPDATE credentials SET owner = 'user:mallory'")
    with Gateway.open(data_dir, make_context()) as gateway:
        with pytest.raises(TamperedRowError, match="credentials"):
            CredentialService(gateway).get("sales")
        with pytest.raises(TamperedRowError):
            CredentialService(gateway).use("sales", "job-1")


def test_an_older_copy_of_a_credential_row_is_refused(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).put("sales", MYSQL, _login("the old password"))
    with closing(sqlite3.connect(data_dir / "vault.db")) as db:
        old = db.execute("SELECT * FROM credentials").fetchone()
        columns = [d[0] for d in db.execute("SELECT * FROM credentials").description]
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).put("sales", MYSQL, _login("the new password"))
    with file_writer(data_dir) as db:  # put the old row back: its seal and AAD are valid
        marks = ", ".join("?" * len(columns))
        put_back = f"INSERT OR REPLACE INTO credentials ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        db.execute(put_back, old)
    with Gateway.open(data_dir, make_context()) as gateway, pytest.raises(TamperedRowError):
        CredentialService(gateway).use("sales", "job-1")


def test_the_endpoint_cannot_be_pointed_at_the_network_in_the_file(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        save_endpoint(gateway, EndpointSettings(port=9443))
    with file_writer(data_dir) as db:
        db.execute("UPDATE settings SET value = '0.0.0.0' WHERE key = 'endpoint_host'")
        db.execute("UPDATE settings SET value = 'yes' WHERE key = 'endpoint_allow_remote'")
    with Gateway.open(data_dir, make_context()) as gateway, pytest.raises(TamperedRowError):
        load_endpoint(gateway)


def test_a_schema_3_vault_seals_its_rows_once_and_keeps_working(tmp_path: Path) -> None:
    data_dir = copy_schema_3_vault(tmp_path / "data")
    with Gateway.open(data_dir, make_context()) as gateway:
        assert CredentialService(gateway).use("sales", "job-1").username == "alice"
        principal = AccessGrants(gateway).principal_for_token(schema_3_token())
        assert principal is not None and principal.role == "creator"
        assert load_endpoint(gateway).port == 9443
        assert Accounts(gateway).sign_in("ada", Secret.from_text("ada vault passphrase 7"))
        sealed = [e for e in gateway.store.audit_events() if e.action == SEALED_ACTION]
    assert len(sealed) == 1
    # Asking for the seals again (a file writer who stripped one) is not honoured.
    with file_writer(data_dir) as db:
        db.execute("UPDATE api_tokens SET mac = NULL, role = 'admin'")
        db.execute("INSERT INTO settings (key, value) VALUES ('rows_unsealed', '1')")
    with Gateway.open(data_dir, make_context()) as gateway, pytest.raises(TamperedRowError):
        AccessGrants(gateway).principal_for_token(schema_3_token())


def _login(secret: str) -> CredentialPayload:
    return CredentialPayload("basic", "u", Secret.from_text(secret))


def _row_copy(data_dir: Path, table: str) -> tuple[list[str], list[tuple[object, ...]]]:
    with closing(sqlite3.connect(data_dir / "vault.db")) as db:
        cursor = db.execute(f"SELECT * FROM {table}")  # noqa: S608 - the test's own names
        return [d[0] for d in cursor.description], cursor.fetchall()


def _put_back(data_dir: Path, table: str, copy: tuple[list[str], list[tuple[object, ...]]]) -> None:
    columns, rows = copy
    marks = ", ".join("?" * len(columns))
    with file_writer(data_dir) as db:
        for row in rows:
            db.execute(
                f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                row,
            )


def test_older_copies_of_rows_do_not_undo_what_the_trail_records(data_dir: Path) -> None:
    # The variant of the older credential row: a revoked token, a removed user,
    # a changed password and a used entry link, each put back from a copy of the
    # file made before, carry valid old seals.  The trail says they are stale.
    with Gateway.open(data_dir, make_context()) as gateway:
        token = AccessGrants(gateway).create_token("etl", "admin")
        accounts = Accounts(gateway)
        accounts.add_user("ada", "admin", Secret.from_text(PASSWORD))
        accounts.add_user("otto", "auditor", Secret.from_text(PASSWORD))
        secret, link = AccessGrants(gateway).create_entry_link(
            "hr", MYSQL, datetime.timedelta(minutes=15)
        )
    copies = {table: _row_copy(data_dir, table) for table in ("api_tokens", "users", "entry_links")}
    with Gateway.open(data_dir, make_context()) as gateway:
        AccessGrants(gateway).revoke_token("etl")
        Accounts(gateway).set_password("ada", Secret.from_text(PASSWORD + " changed"))
        Accounts(gateway).remove_user("otto")
        with gateway.store.write():
            AccessGrants(gateway).consume_entry_link(link)
    for table, copy in copies.items():
        _put_back(data_dir, table, copy)
    with Gateway.open(data_dir, make_context()) as gateway:
        with pytest.raises(TamperedRowError):
            AccessGrants(gateway).principal_for_token(token)
        for name in ("ada", "otto"):  # the old password; the removed user
            with pytest.raises(AccessDeniedError, match="wrong user name or password"):
                Accounts(gateway).sign_in(name, Secret.from_text(PASSWORD))
        with pytest.raises(TamperedRowError):
            AccessGrants(gateway).entry_link(secret)
    refused = _refusals(data_dir)
    assert {"api_tokens:etl", "users:ada", "users:otto", f"entry_links:{link.id}"} <= set(refused)
