"""The one strict JSON reader: what it refuses, what it keeps, and that it is the only one."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.format.strict_json import parse_json_object

ROOT = Path(__file__).resolve().parents[3]

REFUSED = {
    "duplicate-member": b'{"type": "postgresql", "type": "sqlite"}',
    "duplicate-same-value": b'{"a": 1, "a": 1}',
    "duplicate-nested": b'{"a": {"b": 1, "b": 2}}',
    "duplicate-in-an-array": b'{"a": [{"b": 1, "b": 2}]}',
    "lone-high-surrogate": b'{"secret": "\\ud800"}',
    "lone-low-surrogate": b'{"secret": "x\\udfffy"}',
    "reversed-pair": b'{"secret": "\\ude00\\ud83d"}',
    "surrogate-key": b'{"\\ud800": 1}',
    "surrogate-in-an-array": b'{"a": ["ok", ["\\udc00"]]}',
    "surrogate-deep": b'{"a": {"b": [{"c": "\\ud800"}]}}',
    "nan": b'{"a": NaN}',
    "infinity": b'{"a": -Infinity}',
    "not-an-object": b'["a"]',
    "a-string": b'"a"',
    "empty": b"",
    "trailing-data": b'{"a": 1} {"b": 2}',
    "not-utf-8": b'{"a": "\xff"}',
    "utf-16": '{"a": 1}'.encode("utf-16"),
    "deep": b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_json_loads_lets_through_is_refused(case: str) -> None:
    with pytest.raises(ValueError):
        parse_json_object(REFUSED[case])


def test_valid_text_reads_as_json_loads_reads_it() -> None:
    raw = '{"a": "pa\\ud83d\\ude00ss", "b": [1, 2.5, null, true], "c": {"d": "é"}}'
    assert parse_json_object(raw) == parse_json_object(raw.encode()) == json.loads(raw)
    assert parse_json_object(raw)["a"] == "pa\U0001f600ss"


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
            max_leaves=8,
        ),
        max_size=4,
    )
)
def test_any_encodable_object_reads_back_unchanged(value: dict[str, object]) -> None:
    # Lone surrogates cannot be UTF-8: dumping with ensure_ascii writes them as
    # escapes, which must then be refused; everything else must read back.
    text = json.dumps(value)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(ValueError):
            parse_json_object(text)
        return
    assert parse_json_object(text) == value


def _json_parsers(path: Path) -> list[str]:
    """Each place ``path`` parses JSON itself: json's readers, or Flask's."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner, name = node.value.id, node.attr
            if (owner, name) in _PARSERS or name == "get_json":
                found.append(f"{where} {owner}.{name}")
        elif isinstance(node, ast.ImportFrom) and node.module == "json":
            found.append(f"{where} from json import ...")
    return found


_PARSERS = {("json", "loads"), ("json", "load"), ("json", "JSONDecoder"), ("request", "json")}


def test_no_other_module_parses_json() -> None:
    # One reader for JSON from outside (issue 14 item 11): a second json.loads
    # somewhere would bring back last-wins duplicates and lone surrogates.
    found = [
        hit
        for package in ("agent_keys", "vault", "web")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "vault" / "format" / "strict_json.py"
        for hit in _json_parsers(path)
    ]
    assert found == []
