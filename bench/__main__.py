"""``python -m bench [--quick] [--json] [--only crypto|system] [--case NAME]... [--out FILE]``.

Runs the benchmarks, prints the table and the goals, and (for a full run of
everything) writes ``bench/results.md``.  ``--quick`` takes a few minutes; its
figures are for a smoke check, not for quoting.  ``--case`` narrows the system
suite to some of its cases (see ``bench.system.CASES``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from bench.goals import GOALS, Goal
from bench.harness import Measurement
from bench.system import CASES as SYSTEM_CASES

SUITES = ("crypto", "system")
RESULTS = Path(__file__).with_name("results.md")
RATIO_PREFIX = "vs_"  # an extra figure that is a ratio to a peer row (e.g. vs_1_member)
PACKAGES = (
    "gwvault",
    "cryptography",
    "jwcrypto",
    "tink",
    "aws-encryption-sdk",
    "h11",
    "uvloop",
    "flask",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--only", choices=SUITES, help="one suite")
    parser.add_argument(
        "--case",
        action="append",
        choices=SYSTEM_CASES,
        help="only this system case (repeatable; implies --only system)",
    )
    parser.add_argument("--out", type=Path, help="where to write the Markdown results")
    args = parser.parse_args(argv)
    # A run stopped with SIGTERM unwinds as Ctrl-C does, so the servers and the private
    # PostgreSQL it started are stopped and their temporary directories removed.
    signal.signal(signal.SIGTERM, _stop)
    if args.case and args.only not in (None, "system"):
        parser.error("--case narrows the system suite; drop --only crypto")
    measurements: list[Measurement] = []
    for suite in ["system"] if args.case else [args.only] if args.only else SUITES:
        module = importlib.import_module(f"bench.{suite}")
        if args.case:
            measurements += module.run(quick=args.quick, cases=args.case)
        else:
            measurements += module.run(quick=args.quick)
    partial = args.quick or args.case is not None
    goals = GOALS if not (args.only or args.case) else goals_of(measurements)
    report = render(measurements, goals, quick=args.quick)
    if args.json:
        print(json.dumps(as_json(measurements, goals, args.quick), indent=2))
    else:
        print(report)
    out = args.out or (None if partial else RESULTS)  # results.md holds one whole run
    if out is not None:
        out.write_text(report)
    return 0


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {name: _version(name) for name in PACKAGES} | {"wrk": _wrk_version()},
    }


def goals_of(measurements: list[Measurement]) -> list[Goal]:
    """The goals of the groups a partial run measured."""
    measured = {m.group for m in measurements}
    return [goal for goal in GOALS if goal.group in measured]


def as_json(
    measurements: list[Measurement], goals: Sequence[Goal], quick: bool
) -> dict[str, object]:
    found = {(m.group, m.name): m for m in measurements}
    return {
        "quick": quick,
        "machine": machine(),
        "measurements": [m.to_dict() for m in measurements],
        "goals": [
            {"goal": goal.describe(), "figure": figure, "met": met}
            for goal in goals
            for figure, met in [goal.check(found)]
        ],
    }


def render(measurements: list[Measurement], goals: Sequence[Goal], *, quick: bool) -> str:
    info = machine()
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())  # type: ignore[attr-defined]
    lines = [
        "# gwvault benchmarks" + (" (quick run: smoke figures, not for quoting)" if quick else ""),
        "",
        f"Run {info['date']} on {info['cpu']}, {info['cores']} cores, {info['os']},"
        f" Python {info['python']}.",
        f"Versions: {versions}.",
        "",
        "Peers are measured in the same process, bursts interleaved round by round; each"
        " figure is the median of the rounds.",
        "",
        "| group | case | median | unit | rounds | details |",
        "|---|---|---|---|---|---|",
    ]
    for m in measurements:
        rounds = ", ".join(f"{r:.4g}" for r in m.rounds)
        details = "; ".join([*(f"{k} {v:.4g}" for k, v in m.extra.items()), m.note]).strip("; ")
        lines.append(f"| {m.group} | {m.name} | {m.value:.4g} | {m.unit} | {rounds} | {details} |")
    lines += _ratio_lines(measurements)
    found = {(m.group, m.name): m for m in measurements}
    lines += ["", "## Goals", "", "| goal | figure | met |", "|---|---|---|"]
    for goal in goals:
        figure, met = goal.check(found)
        verdict = {True: "yes", False: "**no**", None: "-"}[met]
        lines.append(f"| {goal.describe()} | {figure} | {verdict} |")
    return "\n".join(lines) + "\n"


def _ratio_lines(measurements: list[Measurement]) -> list[str]:
    """The ``vs_PEER`` figures of the rows, as a table of their own."""
    ratios = [
        (m, key.removeprefix(RATIO_PREFIX).replace("_", " "), value)
        for m in measurements
        for key, value in m.extra.items()
        if key.startswith(RATIO_PREFIX)
    ]
    if not ratios:
        return []
    lines = [
        "",
        "## Ratios",
        "",
        "Each is the median of the rounds' ratios to the peer measured in the same round.",
        "",
        "| group | case | against | ratio |",
        "|---|---|---|---|",
    ]
    rows = [f"| {m.group} | {m.name} | {peer} | {value:.2f} x |" for m, peer, value in ratios]
    return lines + rows


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _wrk_version() -> str:
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)  # noqa: S607 - Debian's wrk on PATH
    except OSError:
        return "not installed"
    words = (done.stdout + done.stderr).split()  # "wrk 4.1.0 [epoll] Copyright ..."
    return words[1] if len(words) > 1 else "unknown"


if __name__ == "__main__":
    sys.exit(main())
