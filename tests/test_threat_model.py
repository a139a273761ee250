"""Every test named in threat_model.md exists: a mitigation without its test is a claim."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def test_every_named_test_exists() -> None:
    refs = TEST_REF.findall((ROOT / "threat_model.md").read_text())
    assert len(refs) >= 20
    for path, name in refs:
        module = ROOT / path
        assert module.is_file(), f"threat_model.md names {path}, which does not exist"
        if name:
            tree = ast.parse(module.read_text())
            defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
            assert name in defined, f"threat_model.md names {path}::{name}, which does not exist"


def test_every_threat_row_names_a_test_or_says_it_is_a_limit() -> None:
    rows = [
        line
        for line in (ROOT / "threat_model.md").read_text().splitlines()
        if line.startswith("| T-")
    ]
    assert rows
    for row in rows:
        assert "`tests/" in row or "(limit)" in row, row
