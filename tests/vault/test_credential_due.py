"""What is due of a credential's life, and the warnings raised for it.

The issue's promise: events at 30, 7 and 1 days before expiry and on expiry,
in the audit trail and queued for the sinks; each once, across restarts and
runs; a new date starts over; nothing for disabled or deleted credentials;
and a database writer can neither silence a warning nor stop the others.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret
from tests.store_engines import EngineVaults
from vault.context import RequestContext
from vault.credential_due import due_within, parse_within
from vault.credential_life import LifeChange, life_change_of
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.notify.due_events import raise_due_events

PG = DataSource("postgresql", "127.0.0.1:5432", "sales")
START = datetime.datetime(2027, 1, 1, 9, 0, tzinfo=datetime.UTC)
EXPIRES = START + datetime.timedelta(days=40)
DAY = datetime.timedelta(days=1)


def alice() -> CredentialPayload:
    return CredentialPayload("basic", "alice", Secret.from_text("due-CANARY-77a1"))


Opener = Callable[[datetime.datetime], Gateway]


@pytest.fixture
def at(data_dir: Path) -> Opener:
    """The vault opened afresh (a restart) with the clock at ``moment``."""

    def opened(moment: datetime.datetime) -> Gateway:
        context = RequestContext(actor="test:alice", channel="cli", clock=lambda: moment)
        return Gateway.open(data_dir, context)

    return opened


def tick(at: Opener, moment: datetime.datetime) -> list[tuple[str, str]]:
    with at(moment) as gateway:
        return [(kind, name) for kind, name in raise_due_events(gateway, moment)]


def queued(at: Opener) -> list[tuple[str, str]]:
    with at(START) as gateway:
        rows = gateway.store.rows("SELECT kind, target FROM notify_events ORDER BY id", [])
    return [(row["kind"], row["target"]) for row in rows]


def refusals(gateway: Gateway) -> list[str]:
    events = gateway.store.audit_events()
    return [str(e.target) for e in events if e.action == "integrity.row-refused"]


def expires(moment: datetime.datetime) -> LifeChange:
    return LifeChange(expires_at=moment.isoformat(timespec="seconds"))


@pytest.mark.contract
def test_expiry_warnings_come_30_7_and_1_days_before_and_on_expiry_each_once(at: Opener) -> None:
    with at(START) as gateway:
        CredentialService(gateway).put("sales", PG, alice(), life=expires(EXPIRES))
    assert tick(at, START) == []
    warned = ("credential.expiring", "sales")
    assert tick(at, EXPIRES - 30 * DAY) == [warned]
    assert tick(at, EXPIRES - 29 * DAY) == []  # the next run, after a restart: not again
    assert tick(at, EXPIRES - 7 * DAY) == [warned]
    assert tick(at, EXPIRES - DAY / 2) == [warned]
    assert tick(at, EXPIRES - DAY / 4) == []
    assert tick(at, EXPIRES) == [("credential.expired", "sales")]
    assert tick(at, EXPIRES + 3 * DAY) == []
    assert queued(at) == [warned] * 3 + [("credential.expired", "sales")]
    with at(START) as gateway:
        stages = [
            (e.action, e.details)
            for e in gateway.store.audit_events()
            if e.action.startswith("credential.expir")
        ]
    assert ['"days_before":30' in d for _, d in stages] == [True, False, False, False]
    assert all('"expires_at":"2027-02-10T09:00:00+00:00"' in d for _, d in stages)


def test_a_scheduler_that_was_down_raises_only_the_most_urgent_stage(at: Opener) -> None:
    with at(START) as gateway:
        CredentialService(gateway).put("sales", PG, alice(), life=expires(EXPIRES))
    assert tick(at, EXPIRES - 2 * DAY) == [("credential.expiring", "sales")]
    assert tick(at, EXPIRES - 2 * DAY) == []
    with at(START) as gateway:
        [entry] = [e for e in gateway.store.audit_events() if e.action == "credential.expiring"]
    assert '"days_before":7' in entry.details


def test_a_new_expiry_date_starts_over(at: Opener) -> None:
    with at(START) as gateway:
        CredentialService(gateway).put("sales", PG, alice(), life=expires(EXPIRES))
    assert tick(at, EXPIRES - 7 * DAY) == [("credential.expiring", "sales")]
    later = EXPIRES + 60 * DAY
    with at(EXPIRES - 7 * DAY) as gateway:
        CredentialService(gateway).change_life("sales", expires(later))
    assert tick(at, EXPIRES - 6 * DAY) == []  # 66 days to go: no stage yet
    assert tick(at, later - 30 * DAY) == [("credential.expiring", "sales")]
    assert tick(at, later - 30 * DAY) == []


def test_rotation_is_due_a_period_after_the_last_put_once(at: Opener) -> None:
    with at(START) as gateway:
        service = CredentialService(gateway)
        service.put("sales", PG, alice(), life=life_change_of(rotate_every="90d"))
        # Changing the owner's dates is not a new secret: the period still runs from the put.
        service.change_life("sales", life_change_of(contact="dba@example.com"))
    assert tick(at, START + 89 * DAY) == []
    assert tick(at, START + 90 * DAY) == [("credential.rotation-due", "sales")]
    assert tick(at, START + 91 * DAY) == []
    with at(START + 92 * DAY) as gateway:
        CredentialService(gateway).put("sales", PG, alice())  # rotated
    assert tick(at, START + 181 * DAY) == []
    assert tick(at, START + 182 * DAY) == [("credential.rotation-due", "sales")]


def test_disabled_and_deleted_credentials_get_no_warnings(at: Opener) -> None:
    with at(START) as gateway:
        service = CredentialService(gateway)
        for name in ("off", "gone", "on"):
            service.put(name, PG, alice(), life=expires(EXPIRES))
        service.disable("off")
        service.delete("gone")
    assert tick(at, EXPIRES) == [("credential.expired", "on")]


def test_a_tampered_row_is_refused_and_silences_no_other_credential(
    at: Opener, data_dir: Path, vaults: EngineVaults
) -> None:
    with at(START) as gateway:
        service = CredentialService(gateway)
        service.put("hr", PG, alice(), life=expires(EXPIRES))
        service.put("sales", PG, alice(), life=expires(EXPIRES))
    with vaults.sql(data_dir) as db:
        # A writer moves one expiry away, so that its warning would not come.
        db.execute(
            "UPDATE credentials SET expires_at = '2099-01-01T00:00:00+00:00' WHERE name = 'hr'"
        )
    assert tick(at, EXPIRES) == [("credential.expired", "sales")]
    with at(START) as gateway:
        refused = [
            str(e.target)
            for e in gateway.store.audit_events()
            if e.action == "integrity.row-refused"
        ]
    assert len(refused) == 1 and refused[0].startswith("credentials:")  # by its id


def test_a_planted_trail_entry_does_not_silence_a_warning(
    at: Opener, data_dir: Path, vaults: EngineVaults
) -> None:
    with at(START) as gateway:
        CredentialService(gateway).put("sales", PG, alice(), life=expires(EXPIRES))
    assert tick(at, EXPIRES - 30 * DAY) == [("credential.expiring", "sales")]
    with vaults.sql(data_dir, attacker=True) as db:
        # "Already warned 1 day before": the entry's hash and MAC no longer hold.
        db.execute(
            "UPDATE audit_events SET details = replace(details, '\"days_before\":30',"
            " '\"days_before\":1') WHERE action = 'credential.expiring'"
        )
    assert tick(at, EXPIRES - DAY) == [("credential.expiring", "sales")]
    with at(START) as gateway:
        refused = [
            str(e.target)
            for e in gateway.store.audit_events()
            if e.action == "integrity.row-refused"
        ]
    assert refused and refused[-1].startswith("audit_events:")


def test_due_lists_expiry_rotation_and_the_servers_word_soonest_first(at: Opener) -> None:
    with at(START) as gateway:
        service = CredentialService(gateway)
        service.put(
            "sales", PG, alice(), life=life_change_of("2027-01-20", "10d", "dba@example.com")
        )
        service.put("hr", PG, alice(), life=life_change_of(expires_at="2028-01-01"))
        service.put("plain", PG, alice())
        records = service.list()
    server = {"hr": "2027-01-05T00:00:00+00:00"}
    dues = due_within(records, START, 30 * 86400, lambda r: server.get(r.name))
    assert [(d.name, d.what, d.days_left(START)) for d in dues] == [
        ("hr", "server-expiry", 3),
        ("sales", "rotation", 10),
        ("sales", "expires", 18),
    ]
    later = START + 15 * DAY
    assert dues[1].view(later) == {
        "name": "sales", "what": "rotation", "at": "2027-01-11T09:00:00+00:00", "days_left": -5,
        "overdue": True, "contact": "dba@example.com", "owner": "test:alice",
    }  # fmt: skip
    assert [d.what for d in due_within(records, later, 0)] == ["rotation"]


@pytest.mark.parametrize("text", ["3651d", "1m", "-1d", "", "30", "\u0663\u0660d"])
def test_a_bad_window_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="window"):
        parse_within(text)
