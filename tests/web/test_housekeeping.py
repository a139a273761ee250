"""The endpoint's background work: each worker flushes its counted anonymous events,
the housekeeper checks the whole trail and moves the verified-through mark."""

from __future__ import annotations

import datetime
import logging
import sqlite3
import threading

import pytest
from flask.testing import FlaskClient

from tests.web_fixtures import BASE_URL, WebVault
from vault.audit.coalesce import PER_WINDOW
from vault.audit.mark import MarkBook
from vault.context import RequestContext, utc_now
from vault.credentials import CredentialService
from vault.data_dir import DB_FILE
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from web.housekeeping import audit_housekeeper, flushing_anonymous_events

ANONYMOUS = CredentialPayload("anonymous", None, None)


def coalesced_entries(web_vault: WebVault) -> int:
    db = sqlite3.connect(web_vault.data_dir / DB_FILE)
    try:
        (count,) = db.execute(
            "SELECT count(*) FROM audit_events WHERE details LIKE '%\"coalesced\"%'"
        ).fetchone()
    finally:
        db.close()
    return int(count)


def test_a_stopping_worker_writes_what_it_counted(client: FlaskClient, web_vault: WebVault) -> None:
    with flushing_anonymous_events(web_vault.handle):
        for i in range(PER_WINDOW + 4):
            client.post(
                "/signin", data={"name": f"nobody-{i}", "password": "guess"}, base_url=BASE_URL,
                headers={"Origin": BASE_URL}, environ_base={"REMOTE_ADDR": "203.0.113.7"},
            )  # fmt: skip
        assert coalesced_entries(web_vault) == 0  # counted, not yet written
    assert coalesced_entries(web_vault) == 1


def run_housekeeper_once(web_vault: WebVault) -> None:
    stop = threading.Event()
    stop.set()  # one check, then the wait returns at once
    audit_housekeeper(web_vault.handle)(stop)


def test_the_housekeeper_moves_the_mark_when_the_trail_passes(web_vault: WebVault) -> None:
    run_housekeeper_once(web_vault)
    with web_vault.gateway() as gateway:
        mark = MarkBook(gateway.store, gateway.audit, gateway.gateway_id).load()
        head = gateway.audit.head()
    assert mark is not None and head is not None
    assert mark.through_seq == head.seq and mark.failed_seq is None


def test_the_housekeeper_reports_a_tampered_trail_and_keeps_the_mark(
    web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    run_housekeeper_once(web_vault)
    with web_vault.gateway() as gateway:
        before = MarkBook(gateway.store, gateway.audit, gateway.gateway_id).load()
    db = sqlite3.connect(web_vault.data_dir / DB_FILE)
    db.execute("DROP TRIGGER audit_events_no_update")
    db.execute("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2")
    db.commit()
    db.close()
    caplog.set_level(logging.INFO, logger="gwvault.server")
    run_housekeeper_once(web_vault)
    (line,) = [r for r in caplog.records if "audit full check" in r.getMessage()]
    assert line.levelno == logging.ERROR
    with web_vault.gateway() as gateway:
        after = MarkBook(gateway.store, gateway.audit, gateway.gateway_id).load()
    assert before is not None and after is not None
    assert after.through_seq == before.through_seq and after.failed_seq == 2


def test_the_housekeeper_purges_what_was_deleted_longer_ago_than_the_window(
    web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    month_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=31)
    for name, clock in (("old", lambda: month_ago), ("fresh", utc_now)):
        context = RequestContext(actor="test:alice", channel="cli", clock=clock)
        with Gateway.open(web_vault.data_dir, context, unlocked=web_vault.handle.master_key) as gw:
            service = CredentialService(gw)
            service.put(name, DataSource("http", "https://hr.internal/api"), ANONYMOUS)
            service.delete(name)
    caplog.set_level(logging.INFO, logger="gwvault.server")
    run_housekeeper_once(web_vault)
    purged = [r.getMessage() for r in caplog.records if "credential purge" in r.getMessage()]
    assert purged == ["credential purge: purged old (retention window passed)"]
    with web_vault.gateway() as gateway:
        assert [r.name for r in CredentialService(gateway).list(deleted=True)] == ["fresh"]
