"""Scheduled health checks: a status per credential that a database writer
cannot forge or roll back, one event per change of status, next due times
spread over the interval.  (Many credentials within the concurrency bound:
tests/security/test_scheduled_checks_scale.py.)"""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret
from tests.cluster_vaults import make_cluster
from tests.conftest import make_context
from tests.postgres_servers import PostgresServer, StoreLogin
from tests.store_engines import EngineVaults
from tests.vault.notify.conftest import MovingClock
from vault.access.destination_policy import allow_sqlite_dir
from vault.access.row_seal import TamperedRowError
from vault.cluster.lease import Lease, LeaseLostError, acquire, release
from vault.context import RequestContext
from vault.credential_due import due_report
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.health.checks import LEASE, due_names, tick
from vault.health.history import test_history
from vault.health.run_request import request_run
from vault.health.schedule import next_due
from vault.health.settings import HealthSettings, parse_concurrency
from vault.health.status import read_status

ANONYMOUS = CredentialPayload("anonymous", None, None)


@pytest.fixture
def clock() -> MovingClock:
    return MovingClock()


@pytest.fixture
def ticking(data_dir: Path, clock: MovingClock) -> Iterator[Gateway]:
    """The vault opened as the scheduler opens it, on the test's clock."""
    context = RequestContext(actor="gwvault:scheduler", channel="cli", clock=clock)
    with Gateway.open(data_dir, context) as opened:
        yield opened


def _events(gateway: Gateway) -> list[dict[str, object]]:
    rows = gateway.store.rows("SELECT body FROM notify_events ORDER BY id", [])
    return [json.loads(row["body"]) for row in rows]


def test_next_due_times_spread_over_the_interval_and_keep_each_slot() -> None:
    every = 86_400
    tested = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
    dues = [
        datetime.datetime.fromisoformat(next_due(f"id-{n}", tested, every)) for n in range(1000)
    ]
    offsets = [(due - tested).total_seconds() for due in dues]
    assert all(every / 2 <= o < every * 1.5 for o in offsets)
    buckets = [0] * 10
    for o in offsets:
        buckets[int((o - every / 2) * 10 // every)] += 1
    assert min(buckets) > 60, buckets  # about 100 each: no herd
    # Tested at its slot, a credential's next test is one interval later.
    again = datetime.datetime.fromisoformat(next_due("id-1", dues[1], every))
    assert again - dues[1] == datetime.timedelta(seconds=every)


@pytest.mark.parametrize("text", ["0", "65", "-1", "4.5", "", "٣", "1" * 40])
def test_a_concurrency_bound_outside_1_to_64_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="1 to 64"):
        parse_concurrency(text)


def test_an_interval_outside_5m_to_30d_is_refused() -> None:
    for seconds in (299, 31 * 86_400):
        with pytest.raises(InvalidInputError, match="5m to 30d"):
            HealthSettings(every_seconds=seconds)


def _sqlite_credential(gateway: Gateway, tmp_path: Path, name: str = "app") -> Path:
    allow_sqlite_dir(gateway, str(tmp_path))
    db = tmp_path / f"{name}.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    CredentialService(gateway).put(name, DataSource("sqlite", str(db)), ANONYMOUS)
    return db


def _test(gateway: Gateway, name: str = "app") -> str:
    return CredentialService(gateway).test(name, any_destination=True).reason


@pytest.mark.contract
def test_a_change_of_status_raises_one_event_without_the_drivers_words(
    ticking: Gateway, tmp_path: Path
) -> None:
    gateway = ticking
    db = _sqlite_credential(gateway, tmp_path)
    assert _test(gateway) == "ok"
    assert _events(gateway) == []  # a first test is no change
    db.unlink()
    assert [_test(gateway), _test(gateway)] == ["database_missing", "database_missing"]
    (event,) = _events(gateway)
    assert event["kind"] == "credential.status-changed" and event["credential"] == "app"
    assert event["details"] == {
        "old_reason": "ok",
        "new_reason": "database_missing",
        "trigger": "manual",
    }
    assert str(db) not in json.dumps(event)  # the detail names the file: admins only
    status = read_status(gateway, CredentialService(gateway).get("app"))
    assert status is not None and status.reason == "database_missing"
    assert str(db) in status.view(admin=True)["result_detail"]
    assert "result_detail" not in status.view(admin=False)


@pytest.mark.contract
def test_a_status_row_written_outside_gwvault_is_refused_and_the_next_result_raised(
    ticking: Gateway, data_dir: Path, vaults: EngineVaults, tmp_path: Path
) -> None:
    gateway = ticking
    db = _sqlite_credential(gateway, tmp_path)
    assert _test(gateway) == "ok"
    db.unlink()
    assert _test(gateway) == "database_missing"
    # A database writer makes the failing credential look healthy, and not due.
    with vaults.sql(data_dir, attacker=True) as writer:
        writer.execute(
            "UPDATE credential_status SET reason = 'ok', next_due_at = '2999-01-01T00:00:00+00:00'"
        )
    record = CredentialService(gateway).get("app")
    with pytest.raises(TamperedRowError):
        read_status(gateway, record)
    assert due_names(gateway) == ["app"]  # a refused row is no status: due at once
    assert _test(gateway) == "database_missing"
    assert _events(gateway)[-1]["details"] == {
        "old_reason": "unknown",
        "new_reason": "database_missing",
        "trigger": "manual",
    }


def test_an_older_status_row_put_back_cannot_silence_the_next_change(
    ticking: Gateway, data_dir: Path, vaults: EngineVaults, tmp_path: Path
) -> None:
    gateway = ticking
    db = _sqlite_credential(gateway, tmp_path)
    db.rename(tmp_path / "away.db")
    assert _test(gateway) == "database_missing"
    with vaults.sql(data_dir) as reader:
        failing_row = reader.rows("SELECT * FROM credential_status")
        columns = [c[1] for c in reader.rows("PRAGMA table_info(credential_status)")]
    (tmp_path / "away.db").rename(db)
    assert _test(gateway) == "ok"
    events = len(_events(gateway))
    # The old failure, with its valid old seal, put back before the next failure:
    # that failure would look like no change.
    with vaults.sql(data_dir, attacker=True) as writer:
        marks = ", ".join("?" * len(columns))
        writer.execute("DELETE FROM credential_status")
        writer.execute(
            f"INSERT INTO credential_status ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
            failing_row[0],
        )
    db.unlink()
    assert _test(gateway) == "database_missing"
    assert len(_events(gateway)) == events + 1
    assert _events(gateway)[-1]["details"]["new_reason"] == "database_missing"  # type: ignore[index]


@pytest.mark.services
def test_a_postgres_role_past_the_valid_until_a_test_saw_is_password_expired(
    ticking: Gateway, clock: MovingClock, shared_postgres: PostgresServer
) -> None:
    gateway = ticking
    name = f"gwv_health_{os.getpid()}_{os.urandom(3).hex()}"
    pg = shared_postgres.create_login(name)
    try:
        valid_until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        _valid_until(shared_postgres, name, valid_until.isoformat())
        source = DataSource("postgresql", f"{pg.host}:{pg.port}", pg.database, tls="disable")
        service = CredentialService(gateway)
        right = CredentialPayload("basic", name, Secret.from_text(pg.password))
        service.put("pg", source, right)
        clock.now = datetime.datetime.now(datetime.UTC)
        seen = service.test("pg", any_destination=True)
        assert seen.ok and seen.server_expires_at == valid_until.isoformat(timespec="seconds")
        # What is due lists it beside the owner's dates (credentials due, GET /due).
        due = [(d["name"], d["what"], d["at"]) for d in due_report(gateway, 86_400)]
        assert due == [("pg", "server-expiry", seen.server_expires_at)]

        # Two hours on, the server refuses the password as it would a wrong one.
        _valid_until(shared_postgres, name, "2001-01-01 00:00:00+00")
        clock.now += datetime.timedelta(hours=2)
        expired = service.test("pg", any_destination=True)
        assert expired.reason == "password_expired", expired.detail
        assert "expires at" in expired.detail

        # Without that evidence (a wrong password, no expiry seen), auth_failed.
        wrong = CredentialPayload("basic", name, Secret.from_text("not-" + pg.password))
        service.put("pg-wrong", source, wrong)
        assert service.test("pg-wrong", any_destination=True).reason == "auth_failed"
    finally:
        shared_postgres.drop_login(name)


def _valid_until(server: PostgresServer, role: str, when: str) -> None:
    with server.admin() as db:
        db.execute(
            sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(sql.Identifier(role), sql.Literal(when))
        )


@pytest.mark.services
def test_in_a_cluster_only_the_member_holding_the_lease_runs_the_checks(
    tmp_path: Path, fresh_store_login: StoreLogin
) -> None:
    cluster = make_cluster(tmp_path, fresh_store_login.conninfo, ["a"])
    with Gateway.open(cluster.data_dir("a"), make_context()) as a:
        _sqlite_credential(a, tmp_path)
        acquire(a.store, LEASE, "another-member")  # its lease runs: not a's turn
        with pytest.raises(LeaseLostError, match="another member"):
            tick(a)
        assert due_names(a) == ["app"]  # nothing was tested
        release(a.store, Lease(LEASE, "another-member", 1))
        (outcome,) = tick(a)  # a takes the lease, tests and records in fenced steps
        assert outcome.ok
        history = test_history(a, "app", admin=False)
        assert [(h["trigger"], h["reason"]) for h in history] == [("scheduled", "ok")]
        assert "detail" not in history[0]


def test_a_tampered_credential_row_stops_no_other_check(
    ticking: Gateway, data_dir: Path, vaults: EngineVaults, tmp_path: Path
) -> None:
    gateway = ticking
    _sqlite_credential(gateway, tmp_path, "app")
    _sqlite_credential(gateway, tmp_path, "planted")
    with vaults.sql(data_dir, attacker=True) as writer:
        writer.execute("UPDATE credentials SET owner = 'mallory' WHERE name = 'planted'")
    outcomes = tick(gateway)
    assert [(o.name, o.reason) for o in outcomes] == [("app", "ok")]
    refused = gateway.store.find_audit("action = 'integrity.row-refused'", [], 10)
    assert refused, "the planted row's refusal is recorded"


def test_a_requested_run_makes_every_enabled_credential_due_at_the_next_tick(
    ticking: Gateway, tmp_path: Path, clock: MovingClock
) -> None:
    gateway = ticking
    _sqlite_credential(gateway, tmp_path, "app")
    _sqlite_credential(gateway, tmp_path, "crm")
    CredentialService(gateway).disable("crm")
    assert [o.name for o in tick(gateway)] == ["app"]
    clock.advance(minutes=5)
    assert due_names(gateway) == []  # tested: its next test is about a day away
    request_run(gateway, None)
    assert due_names(gateway) == ["app"]  # the disabled one stays untested
    clock.advance(seconds=1)
    assert [o.name for o in tick(gateway)] == ["app"]
    assert due_names(gateway) == []  # the request is answered once
    requested = [e for e in gateway.store.audit_events() if e.action.endswith("requested")]
    assert [e.action for e in requested] == ["credentials.test-all-requested"]


def test_a_run_request_planted_in_the_file_is_refused(
    ticking: Gateway, data_dir: Path, tmp_path: Path
) -> None:
    # Sealed: a writer cannot keep every credential due (logins in a loop).
    _sqlite_credential(ticking, tmp_path)
    tick(ticking)
    with sqlite3.connect(data_dir / "vault.db") as db:
        db.execute(
            "INSERT INTO settings (key, value) VALUES ('health_run_requested_at', ?)",
            ["2026-12-06T09:00:00+00:00"],
        )
    with pytest.raises(TamperedRowError):
        due_names(ticking)
