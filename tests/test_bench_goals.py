"""The benchmark's goal table says met, not met or not measured, from the figures alone."""

from __future__ import annotations

from math import nan

from bench.agent import name as agent_row
from bench.at_scale import AUDIT_PAGES, CREDENTIAL_PAGES
from bench.goals import GOALS, Goal
from bench.harness import Measurement
from bench.throughput import GWVAULT, HELLO
from bench.throughput import name as row


def _found(*measurements: Measurement) -> dict[tuple[str, str], Measurement]:
    return {(m.group, m.name): m for m in measurements}


def test_a_ratio_goal_compares_speeds_in_one_group() -> None:
    goal = Goal("seal-p256", "gwvault", 3.0, "jwcrypto")
    fast = _found(
        Measurement("seal-p256", "gwvault", "ops/s", 9000.0),
        Measurement("seal-p256", "jwcrypto", "ops/s", 3000.0),
    )
    slow = _found(
        Measurement("seal-p256", "gwvault", "ops/s", 8999.0),
        Measurement("seal-p256", "jwcrypto", "ops/s", 3000.0),
    )
    assert goal.check(fast) == ("3.00 x", True)
    assert goal.check(slow) == ("3.00 x", False)  # 2.9997, shown rounded, still short
    assert goal.check(_found(Measurement("seal-p256", "gwvault", "ops/s", 1.0))) == (
        "peer not measured",
        None,
    )


def test_a_bound_from_above_on_seconds_and_on_an_extra_figure() -> None:
    verify = Goal("audit-verify-1m", "cli", 10.0, at_most=True)
    assert verify.check(_found(Measurement("audit-verify-1m", "cli", "s", 6.9))) == ("6.9 s", True)
    assert verify.check(_found(Measurement("audit-verify-1m", "cli", "s", 10.5)))[1] is False
    p99 = Goal("https", "serve", 25.0, extra="p99_ms", at_most=True)
    load = Measurement("https", "serve", "req/s", 600.0, extra={"p99_ms": 40.0})
    assert p99.check(_found(load)) == ("40 ms", False)
    assert Goal("https", "serve", 2000.0).check(_found(load)) == ("600 req/s", False)
    assert p99.check({}) == ("not measured", None)


def test_a_case_that_served_nothing_misses_its_ratio_goal_rather_than_going_unmeasured() -> None:
    goal = Goal("https-encrypt-value", "gwvault @32", 0.5, "hello-world @32")
    dead = _found(
        Measurement("https-encrypt-value", "gwvault @32", "req/s", 0.0),
        Measurement("https-encrypt-value", "hello-world @32", "req/s", 4000.0),
    )
    assert goal.check(dead) == ("0.00 x", False)
    idle_peer = _found(
        Measurement("https-encrypt-value", "gwvault @32", "req/s", 900.0),
        Measurement("https-encrypt-value", "hello-world @32", "req/s", 0.0),
    )
    assert goal.check(idle_peer) == ("peer measured 0", None)


def test_a_percentile_of_no_successful_request_is_a_miss() -> None:
    p99 = Goal("https-encrypt-value", "gwvault @32", 25.0, extra="p99_ms", at_most=True)
    none_ok = Measurement("https-encrypt-value", "gwvault @32", "req/s", 0.0, extra={"p99_ms": nan})
    assert p99.check(_found(none_ok)) == ("no figure", False)
    assert p99.describe() == "https-encrypt-value: gwvault @32 p99_ms <= 25"


def test_the_issue_goals_name_rows_the_benchmarks_produce() -> None:
    """Every goal of issue 15 is in the table, and a run without a figure says so."""
    by_name = {(goal.group, goal.name, goal.peer, goal.extra): goal for goal in GOALS}
    https = "https-encrypt-value"
    for n in (8, 32, 128):
        assert (https, row(GWVAULT, n), row(HELLO, n), None) in by_name
    assert by_name[(https, "gwvault @128", "gwvault @8", None)].target == 0.9
    assert by_name[(https, "gwvault @32", None, None)].target == 2000.0
    assert by_name[(https, "gwvault @32", None, "p99_ms")].target == 25.0
    assert by_name[("audit-1m", "GET /audit (page)", None, None)].target == 0.2
    assert by_name[("list-100k", "GET /credentials (page)", None, None)].target == 0.1
    assert by_name[("list-100k", "GET /api/v1/credentials", None, None)].target == 0.1
    assert by_name[("agent-use-credential", agent_row(8), None, None)].target == 5000.0
    assert by_name[("rotate-100k", "gwvault keys rotate", None, None)].target == 10.0
    pages = {(p.group, p.name) for p in (*CREDENTIAL_PAGES, *AUDIT_PAGES)}
    assert {(g.group, g.name) for g in GOALS if g.group in ("audit-1m", "list-100k")} <= pages
    assert all(goal.check({})[1] is None for goal in GOALS)
