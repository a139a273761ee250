"""Anonymous clients cannot grow the audit trail without bound (issue 15): failed
sign-ins for unknown names and garbage on an entry link are written up to
``PER_WINDOW`` per client address and window, then counted into one entry.
Real requests through the Flask app; a known user's failures are never coalesced."""

from __future__ import annotations

import datetime
import json
import sqlite3
from typing import Any

from flask.testing import FlaskClient

from tests.web.api_helpers import API, new_entry_link, sealed_body
from tests.web_fixtures import BASE_URL, PASSWORDS, WebVault
from vault.audit.background import flush
from vault.audit.coalesce import COALESCER, PER_WINDOW, WINDOW, AuditCoalescer
from vault.audit.log import AuditLog
from vault.data_dir import DB_FILE

ATTACKER = {"REMOTE_ADDR": "203.0.113.7"}
OTHER = {"REMOTE_ADDR": "198.51.100.9"}


def _entries(web_vault: WebVault, action: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(web_vault.data_dir / DB_FILE)
    try:
        rows = db.execute(
            "SELECT target, actor, details FROM audit_events WHERE action = ? ORDER BY seq",
            [action],
        ).fetchall()
    finally:
        db.close()
    return [{"target": t, "actor": a, **json.loads(d)} for t, a, d in rows]


def _sign_in(client: FlaskClient, name: str, password: str, environ: dict[str, str]) -> int:
    response = client.post(
        "/signin", data={"name": name, "password": password}, base_url=BASE_URL,
        headers={"Origin": BASE_URL}, environ_base=environ,
    )  # fmt: skip
    return response.status_code


def _flush(web_vault: WebVault) -> int:
    with web_vault.gateway() as gateway:
        written = flush(gateway, final=True)
        assert AuditLog(gateway).verify().ok
    return written


def test_unknown_user_sign_ins_are_written_up_to_a_limit_then_counted(
    client: FlaskClient, web_vault: WebVault
) -> None:
    for i in range(PER_WINDOW + 12):
        assert _sign_in(client, f"nobody-{i}", "guess", ATTACKER) == 403
    assert _sign_in(client, "nobody-else", "guess", OTHER) == 403  # another address: its own
    failed = _entries(web_vault, "user.signin-failed")
    assert len(failed) == PER_WINDOW + 1
    assert [e["target"] for e in failed[:PER_WINDOW]] == [f"nobody-{i}" for i in range(PER_WINDOW)]
    assert _flush(web_vault) == 1
    coalesced = _entries(web_vault, "user.signin-failed")[-1]
    assert (coalesced["coalesced"], coalesced["client"]) == (12, "203.0.113.7")
    assert coalesced["target"] is None and coalesced["actor"] == "anonymous"
    start = datetime.datetime.fromisoformat(coalesced["window_start"])
    assert datetime.datetime.fromisoformat(coalesced["window_end"]) - start <= WINDOW


def test_a_known_users_failures_and_lockout_are_never_coalesced(
    client: FlaskClient, web_vault: WebVault
) -> None:
    for i in range(PER_WINDOW + 3):  # the address's budget for unknown names is spent
        _sign_in(client, f"nobody-{i}", "guess", ATTACKER)
    for _ in range(PER_WINDOW + 2):
        assert _sign_in(client, "otto", "not otto's password", ATTACKER) == 403
    known = [e for e in _entries(web_vault, "user.signin-failed") if e["target"] == "otto"]
    assert [e["failures"] for e in known] == list(range(1, PER_WINDOW + 1))
    assert len([e for e in _entries(web_vault, "user.locked") if e["target"] == "otto"]) == 1
    refused = _entries(web_vault, "user.signin-refused")
    assert len(refused) == 2  # each attempt on the locked account: written
    assert _sign_in(client, "ada", PASSWORDS["ada"], ATTACKER) == 302


def test_garbage_posted_to_an_entry_link_is_written_up_to_a_limit_then_counted(
    client: FlaskClient, web_vault: WebVault
) -> None:
    secret = new_entry_link(web_vault, "sales-db")
    body = sealed_body(web_vault, "sales-db") | {"encrypted_credential": "e30.e30.e30.e30.e30"}
    for _ in range(PER_WINDOW + 7):
        response = client.put(
            f"{API}/entry/{secret}", json=body, base_url=BASE_URL,
            headers={"Origin": BASE_URL}, environ_base=ATTACKER,
        )  # fmt: skip
        assert response.status_code == 400
    rejected = _entries(web_vault, "credential.rejected")
    assert len(rejected) == PER_WINDOW
    assert _flush(web_vault) == 1
    last = _entries(web_vault, "credential.rejected")[-1]
    assert (last["coalesced"], last["client"]) == (7, "203.0.113.7")
    assert _flush(web_vault) == 0  # written once


def test_an_expired_link_asked_again_and_again_is_written_up_to_a_limit(
    client: FlaskClient, web_vault: WebVault
) -> None:
    an_hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    secret = new_entry_link(web_vault, "sales-db", clock=lambda: an_hour_ago)
    for _ in range(PER_WINDOW + 4):
        response = client.get(f"{API}/entry/{secret}", base_url=BASE_URL, environ_base=ATTACKER)
        assert response.status_code == 403
    assert len(_entries(web_vault, "entry-link.expired")) == PER_WINDOW
    assert _flush(web_vault) == 1
    assert _entries(web_vault, "entry-link.expired")[-1]["coalesced"] == 4


def test_a_closed_window_is_written_by_the_next_event() -> None:
    coalescer = AuditCoalescer(per_window=2, window=datetime.timedelta(seconds=10))
    t0 = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    at = [t0 + datetime.timedelta(seconds=s) for s in (0, 1, 2, 3, 12)]
    admitted = [coalescer.admit("gw", "user.signin-failed", "a", "failed", t) for t in at[:4]]
    assert admitted == [True, True, False, False]
    assert coalescer.take("gw", at[3]) == []  # still open
    taken = coalescer.take("gw", at[4])
    assert [(c.count, c.window_start, c.window_end) for c in taken] == [
        (2, "2026-12-01T00:00:00+00:00", "2026-12-01T00:00:10+00:00")
    ]
    assert coalescer.admit("gw", "user.signin-failed", "a", "failed", at[4])  # a new window


def test_the_counts_stay_bounded_in_memory() -> None:
    coalescer = AuditCoalescer(per_window=1, max_keys=3)
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    for i in range(100):
        coalescer.admit("gw", "user.signin-failed", f"10.0.0.{i}", "failed", now)
        coalescer.admit("gw", "user.signin-failed", f"10.0.0.{i}", "failed", now)
    taken = coalescer.take("gw", now, everything=True)
    assert len(taken) == 3 + 1  # three addresses, and "other addresses"
    assert sum(c.count for c in taken) == 3 + (97 * 2 - 1)  # every event not written
    assert COALESCER is not coalescer
