"""The audit filters (``gwvault audit list``, the API and the page) answer from the
indexes: a filter by action prefix listed the matching actions from the
(action, seq) index instead of scanning the trail with LIKE (0.1 s at 1M
entries), and gives exactly what LIKE gave."""

from __future__ import annotations

import fnmatch
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import make_context
from vault.audit.log import AuditLog, AuditQuery
from vault.gateway import Gateway

ACTIONS = (
    "credential.created", "credential.used", "credentials.verified", "user.added",
    "user.removed", "entry-link.created", "keys.rotated", "credential-x.odd",
)  # fmt: skip


def _trail(path: Path, rounds: int = 12) -> None:
    with Gateway.open(path, make_context()) as gateway, gateway.store.write():
        for i in range(rounds):
            for action in ACTIONS:
                gateway.audit.record(action, f"t-{i % 3}")


def _expected(path: Path, pattern: str, before: int | None, limit: int) -> list[int]:
    """What the filter means, computed by hand from every entry."""
    with Gateway.open(path, make_context()) as gateway:
        entries = gateway.store.audit_events()
    matching = [
        e.seq
        for e in entries
        if fnmatch.fnmatchcase(e.action, pattern) and (before is None or e.seq < before)
    ]
    return sorted(matching, reverse=True)[:limit]


@pytest.mark.parametrize("action", ["credential.*", "user.*", "entry-link.*", "nope.*", "keys.*"])
@pytest.mark.parametrize(("before", "limit"), [(None, 1000), (None, 5), (40, 7)])
def test_a_prefix_filter_gives_exactly_the_matching_entries(
    data_dir: Path, action: str, before: int | None, limit: int
) -> None:
    _trail(data_dir)
    query = AuditQuery.parse(action=action, before_seq=before, limit=limit)
    with Gateway.open(data_dir, make_context()) as gateway:
        found = [entry.seq for entry in AuditLog(gateway).find(query)]
    assert found == _expected(data_dir, action, before, limit)


def test_a_trail_with_hundreds_of_invented_actions_still_filters_exactly(data_dir: Path) -> None:
    _trail(data_dir, rounds=2)
    with sqlite3.connect(data_dir / "vault.db") as db:  # a database writer's entries
        db.executemany(
            "INSERT INTO audit_events (at, actor, channel, action, target, outcome,"
            " request_id, details) VALUES ('2026-01-01T00:00:00+00:00', 'x', 'cli', ?, NULL,"
            " 'ok', 'r', '{}')",
            [(f"user.invented-{i:04d}",) for i in range(300)],
        )
    query = AuditQuery.parse(action="user.*", limit=1000)
    with Gateway.open(data_dir, make_context()) as gateway:
        found = [entry.seq for entry in AuditLog(gateway).find(query)]
    assert found == _expected(data_dir, "user.*", None, 1000) and len(found) == 304


@pytest.mark.parametrize(
    "filters",
    [
        {"action": "user.*"},
        {"action": "credential.*", "before_seq": "20"},
        {"action": "user.added"},
        {"credential": "t-1"},
        {"credential": "t-1", "action": "credential.*"},
    ],
)
def test_filters_read_an_index_not_the_whole_trail(data_dir: Path, filters: dict[str, str]) -> None:
    _trail(data_dir, rounds=3)
    statements: list[str] = []
    with Gateway.open(data_dir, make_context()) as gateway:
        connection = gateway.store._engine._db.conn  # type: ignore[attr-defined]
        connection.set_trace_callback(statements.append)
        AuditLog(gateway).find(AuditQuery.parse(**filters))
        connection.set_trace_callback(None)
        plans = [
            " / ".join(str(row[3]) for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in statements
            if sql.startswith("SELECT") and "audit_events" in sql
        ]
    assert plans and all("SCAN audit_events" not in plan for plan in plans), plans
