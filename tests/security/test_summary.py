"""The ``make security`` table adds up what each test recorded, and fails on any failure."""

from __future__ import annotations

from pathlib import Path

from tests.security.summary import figures, main, table, totals

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="tests.security.test_fuzz" name="a" time="1.5">
    <properties><property name="cases" value="200"/></properties>
  </testcase>
  <testcase classname="tests.security.test_fuzz" name="b" time="0.5">
    <properties><property name="cases" value="50"/><property name="crashes" value="0"/>
    <property name="figure" value="worst request 0.05 s"/></properties>
  </testcase>
  <testcase classname="tests.security.test_crash" name="c" time="3.0">
    <properties><property name="cases" value="40"/><property name="kills" value="37"/>
    </properties>
    <failure message="lost a credential">...</failure>
  </testcase>
  <testcase classname="tests.security.test_tls" name="d" time="0.1">
    <skipped message="no sslyze"/>
  </testcase>
</testsuite></testsuites>
"""


def test_totals_add_up_cases_failures_and_crashes(tmp_path: Path) -> None:
    report = tmp_path / "security.xml"
    report.write_text(REPORT)
    suites = totals(report)
    assert (suites["test_fuzz"].tests, suites["test_fuzz"].cases) == (2, 250)
    assert (suites["test_crash"].failures, suites["test_crash"].kills) == (1, 37)
    assert (suites["test_tls"].skipped, suites["test_tls"].cases) == (1, 1)
    printed = table(suites)
    assert printed.splitlines()[-1].split() == ["total", "4", "291", "1", "1", "0", "37", "5.1"]
    assert main([str(report)]) == 1


def test_a_fuzzer_crash_fails_the_run_even_without_a_failed_test(tmp_path: Path) -> None:
    report = tmp_path / "security.xml"
    clean = REPORT.replace('<failure message="lost a credential">...</failure>', "")
    report.write_text(clean.replace('name="crashes" value="0"', 'name="crashes" value="2"'))
    assert main([str(report)]) == 1


def test_a_clean_report_passes(tmp_path: Path) -> None:
    report = tmp_path / "security.xml"
    report.write_text(REPORT.replace('<failure message="lost a credential">...</failure>', ""))
    assert main([str(report)]) == 0


def test_recorded_figures_are_listed_by_test(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(REPORT)
    assert figures(report) == ["b: worst request 0.05 s"]
