"""The issue's performance goals, as ratios and bounds over one run's measurements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.harness import Measurement


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
        return f"{self.group}: {self.extra or self.name} {bound} {self.target:g}"

    def check(self, found: Mapping[tuple[str, str], Measurement]) -> tuple[str, bool | None]:
        """(the figure as text, met?); met is None when a figure is missing."""
        mine = found.get((self.group, self.name))
        if mine is None:
            return "not measured", None
        if self.peer is not None:
            peer = found.get((self.group, self.peer))
            if peer is None or not peer.value or not mine.value:
                return "peer not measured", None
            # Both are speeds (ops/s): the ratio is how many times faster gwvault is.
            ratio = mine.value / peer.value
            return f"{ratio:.2f} x", ratio >= self.target
        value = mine.extra.get(self.extra) if self.extra else mine.value
        if value is None:
            return "not measured", None
        unit = "ms" if self.extra else mine.unit
        met = value <= self.target if self.at_most else value >= self.target
        return f"{value:.3g} {unit}", met


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


GOALS: Sequence[Goal] = (
    *_sealing_goals(),
    Goal("stored-open", "gwvault", 1.0, "tink-envelope-aead"),
    Goal("https-encrypt-value", "gwvault serve", 2000.0),
    Goal("https-encrypt-value", "gwvault serve", 25.0, extra="p99_ms", at_most=True),
    Goal("rotate-100k", "gwvault keys rotate", 15.0, at_most=True),
    Goal("audit-verify-1m", "cli", 10.0, at_most=True),
    Goal("cold-start", "--help", 0.3, at_most=True),
)
