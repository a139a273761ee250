"""``python -m bench [--quick] [--json] [--only crypto|system] [--out FILE]``.

Runs the benchmarks, prints the table and the goals, and (for a full run)
writes ``bench/results.md``.  ``--quick`` takes under two minutes; its figures
are for a smoke check, not for quoting.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from bench.goals import GOALS
from bench.harness import Measurement

SUITES = ("crypto", "system")
RESULTS = Path(__file__).with_name("results.md")
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
    parser.add_argument("--quick", action="store_true", help="a smoke run, under two minutes")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--only", choices=SUITES, help="one suite")
    parser.add_argument("--out", type=Path, help="where to write the Markdown results")
    args = parser.parse_args(argv)
    measurements: list[Measurement] = []
    for suite in [args.only] if args.only else SUITES:
        module = importlib.import_module(f"bench.{suite}")
        measurements += module.run(quick=args.quick)
    report = render(measurements, quick=args.quick)
    if args.json:
        print(json.dumps(as_json(measurements, args.quick), indent=2))
    else:
        print(report)
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        out.write_text(report)
    return 0


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
        "versions": {name: _version(name) for name in PACKAGES},
    }


def as_json(measurements: list[Measurement], quick: bool) -> dict[str, object]:
    found = {(m.group, m.name): m for m in measurements}
    return {
        "quick": quick,
        "machine": machine(),
        "measurements": [m.to_dict() for m in measurements],
        "goals": [
            {"goal": goal.describe(), "figure": figure, "met": met}
            for goal in GOALS
            for figure, met in [goal.check(found)]
        ],
    }


def render(measurements: list[Measurement], *, quick: bool) -> str:
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
    found = {(m.group, m.name): m for m in measurements}
    lines += ["", "## Goals", "", "| goal | figure | met |", "|---|---|---|"]
    for goal in GOALS:
        figure, met = goal.check(found)
        verdict = {True: "yes", False: "**no**", None: "-"}[met]
        lines.append(f"| {goal.describe()} | {figure} | {verdict} |")
    return "\n".join(lines) + "\n"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
