"""The benchmark's goal table says met, not met or not measured, from the figures alone."""

from __future__ import annotations

from bench.goals import Goal
from bench.harness import Measurement


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
