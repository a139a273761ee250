"""The issue's performance goals, as ratios and bounds over one run's measurements."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.harness import Measurement
from bench.throughput import CONNECTIONS, GROUP, GWVAULT, HELLO
from bench.throughput import name as row


@dataclass(frozen=True)
class Goal:
    """``group/name`` against a peer of the same group (a ratio of speeds) or a bound."""

    group: str
    name: str
    target: float
    peer: str | None = None  # a ratio goal: name must reach target x peer
    extra: str | None = None  # bound this ``extra`` figure (e.g. "p99_ms") instead of the value
    at_most: bool = False  # a bound from above (seconds, milliseconds)

    def describe(self) -> str:
        if self.peer is not None:
            return f"{self.group}: {self.name} >= {self.target:g} x {self.peer}"
        bound = "<=" if self.at_most else ">="
        figure = f"{self.name} {self.extra}" if self.extra else self.name
        return f"{self.group}: {figure} {bound} {self.target:g}"

    def check(self, found: Mapping[tuple[str, str], Measurement]) -> tuple[str, bool | None]:
        """(the figure as text, met?); met is None when a figure is missing."""
        mine = found.get((self.group, self.name))
        if mine is None:
            return "not measured", None
        if self.peer is not None:
            return self._ratio(mine, found.get((self.group, self.peer)))
        value = mine.extra.get(self.extra) if self.extra else mine.value
        if value is None:
            return "not measured", None
        if math.isnan(value):  # e.g. no successful request to take a percentile of
            return "no figure", False
        unit = "ms" if self.extra else mine.unit
        met = value <= self.target if self.at_most else value >= self.target
        return f"{value:.3g} {unit}", met

    def _ratio(self, mine: Measurement, peer: Measurement | None) -> tuple[str, bool | None]:
        if peer is None:
            return "peer not measured", None
        if not peer.value > 0:  # a ratio to nothing says nothing
            return "peer measured 0", None
        # Both are speeds (ops/s): the ratio is how many times faster gwvault is;
        # a case that served nothing (0/s) is 0 x, not missing.
        ratio = mine.value / peer.value
        return f"{ratio:.2f} x", ratio >= self.target


def _sealing_goals() -> list[Goal]:
    goals = []
    for group in ("seal-p256", "open-p256", "seal-rsa3072", "open-rsa3072"):
        aws = "aws-esdk-raw-aes" if "p256" in group else "aws-esdk-raw-rsa"
        goals += [
            Goal(group, "gwvault", 0.85, "floor"),
            Goal(group, "gwvault", 3.0, "jwcrypto"),
            Goal(group, "gwvault", 3.0, aws),
        ]
        if "p256" in group:
            goals.append(Goal(group, "gwvault", 0.9, "tink-ecies-p256"))
    return goals


def _https_goals() -> list[Goal]:
    """encrypt-value against the hello-world on the same server stack, under wrk."""
    goals = [Goal(GROUP, row(GWVAULT, n), 0.5, row(HELLO, n)) for n in CONNECTIONS]
    at32 = row(GWVAULT, 32)
    return [
        *goals,
        Goal(GROUP, at32, 2000.0),
        Goal(GROUP, at32, 25.0, extra="p99_ms", at_most=True),
        # No collapse as clients grow: 128 connections keep 90% of 8's rate.
        Goal(GROUP, row(GWVAULT, 128), 0.9, row(GWVAULT, 8)),
    ]


GOALS: Sequence[Goal] = (
    *_sealing_goals(),
    Goal("stored-open", "gwvault", 1.0, "tink-envelope-aead"),
    *_https_goals(),
    Goal("audit-1m", "GET /audit (page)", 0.2, at_most=True),
    Goal("list-100k", "GET /credentials (page)", 0.1, at_most=True),
    Goal("list-100k", "GET /api/v1/credentials", 0.1, at_most=True),
    Goal("agent-use-credential", "8 threads", 5000.0),
    Goal("rotate-100k", "gwvault keys rotate", 10.0, at_most=True),
    Goal("audit-verify-1m", "cli", 10.0, at_most=True),
    Goal("cold-start", "--help", 0.3, at_most=True),
)
