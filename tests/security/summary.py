"""The table ``make security`` prints: per suite, cases run, failures and crashes.

Reads the JUnit XML pytest writes (``--junitxml``).  Tests report what they ran
with ``record_property("cases", n)`` (fuzz examples, killed runs, requests,
scan checks), ``record_property("crashes", n)`` for crashes a fuzzer found (a
failure) and ``record_property("kills", n)`` for processes a crash-consistency
test killed mid-operation (the point of the test); a test that reports no count
counts as one case.  ``record_property("figure", text)`` adds a measured figure
(a latency under attack, a memory growth) to the list printed under the table.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SuiteTotals:
    tests: int = 0
    cases: int = 0
    failures: int = 0
    skipped: int = 0
    crashes: int = 0
    kills: int = 0
    seconds: float = 0.0


def totals(report: Path) -> dict[str, SuiteTotals]:
    """Per test module (``tests/security/test_x.py`` -> ``test_x``)."""
    suites: dict[str, SuiteTotals] = {}
    for case in ET.parse(report).iter("testcase"):  # noqa: S314 - see the import
        module = case.get("classname", "?").split(".")[-1]
        suite = suites.setdefault(module, SuiteTotals())
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        suite.tests += 1
        suite.cases += int(properties.get("cases") or 1)
        suite.crashes += int(properties.get("crashes") or 0)
        suite.kills += int(properties.get("kills") or 0)
        suite.seconds += float(case.get("time") or 0)
        if case.find("failure") is not None or case.find("error") is not None:
            suite.failures += 1
        elif case.find("skipped") is not None:
            suite.skipped += 1
    return suites


def figures(report: Path) -> list[str]:
    """Every ``figure`` a test recorded, as ``test name: figure``, in report order."""
    return [
        f"{case.get('name', '?')}: {p.get('value')}"
        for case in ET.parse(report).iter("testcase")  # noqa: S314 - see the import
        for p in case.iter("property")
        if p.get("name") == "figure"
    ]


def table(suites: dict[str, SuiteTotals]) -> str:
    columns = ("tests", "cases", "failed", "skipped", "crashes", "kills", "s")
    header = f"{'suite':<28} " + " ".join(f"{c:>8}" for c in columns)
    lines = [header, "-" * len(header)]
    grand = SuiteTotals()
    for name in sorted(suites):
        s = suites[name]
        lines.append(_row(name, s))
        for field in _FIELDS:
            setattr(grand, field, getattr(grand, field) + getattr(s, field))
    lines += ["-" * len(header), _row("total", grand)]
    return "\n".join(lines)


_FIELDS = ("tests", "cases", "failures", "skipped", "crashes", "kills", "seconds")


def _row(name: str, s: SuiteTotals) -> str:
    counts = " ".join(f"{getattr(s, field):>8}" for field in _FIELDS[:-1])
    return f"{name:<28} {counts} {s.seconds:>8.1f}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.security.summary REPORT.xml", file=sys.stderr)
        return 2
    suites = totals(Path(argv[0]))
    print(table(suites))
    measured = figures(Path(argv[0]))
    if measured:
        print("\nfigures:")
        print("\n".join(f"  {line}" for line in measured))
    failed = any(s.failures or s.crashes for s in suites.values())
    return 1 if failed or not suites else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
