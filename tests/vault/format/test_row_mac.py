"""The row MAC: any change to any sealed field, the table or the gateway breaks it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_keys.secret import Secret
from vault.format.row_mac import RowValue, row_key, row_mac, row_mac_ok

KEY = row_key(Secret(b"\x07" * 32))
GATEWAY = "6d1f3c9e-2b4a-4f8e-9c1d-7a5b3e2f1d0c"
ROW: dict[str, RowValue] = {"name": "etl", "role": "creator", "token_hash": b"\x01" * 32,
                            "revoked_at": None, "tests_used": 0}  # fmt: skip


def test_a_row_verifies_with_its_own_mac_only() -> None:
    mac = row_mac(KEY, GATEWAY, "api_tokens", ROW)
    assert row_mac_ok(KEY, GATEWAY, "api_tokens", ROW, mac)
    assert not row_mac_ok(KEY, GATEWAY, "api_tokens", ROW, None)
    assert not row_mac_ok(KEY, GATEWAY, "api_tokens", ROW, mac[:-1] + bytes([mac[-1] ^ 1]))
    assert not row_mac_ok(KEY, GATEWAY, "users", ROW, mac)
    assert not row_mac_ok(KEY, "0" + GATEWAY[1:], "api_tokens", ROW, mac)
    assert not row_mac_ok(row_key(Secret(b"\x08" * 32)), GATEWAY, "api_tokens", ROW, mac)


@pytest.mark.parametrize(
    "change",
    [{"role": "admin"}, {"revoked_at": "2026-12-01T00:00:00+00:00"}, {"revoked_at": ""},
     {"tests_used": -1}, {"tests_used": "0"}, {"token_hash": b"\x01" * 31},
     {"name": "etl", "extra": None}],
    ids=["promoted", "revoked", "empty-not-null", "count", "int-as-text", "hash", "column"],
)  # fmt: skip
def test_each_change_breaks_the_mac(change: dict[str, RowValue]) -> None:
    mac = row_mac(KEY, GATEWAY, "api_tokens", ROW)
    assert not row_mac_ok(KEY, GATEWAY, "api_tokens", {**ROW, **change}, mac)


def test_column_boundaries_cannot_be_shifted() -> None:
    assert row_mac(KEY, GATEWAY, "t", {"a": "bc", "d": ""}) != row_mac(
        KEY, GATEWAY, "t", {"a": "b", "d": "c"}
    )
    assert row_mac(KEY, GATEWAY, "ta", {"b": 1}) != row_mac(KEY, GATEWAY, "t", {"ab": 1})


def test_a_bool_is_not_a_row_value() -> None:
    with pytest.raises(TypeError):
        row_mac(KEY, GATEWAY, "t", {"flag": True})


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.none()
        | st.integers(-(2**63), 2**63 - 1)
        | st.text(max_size=20)
        | st.binary(max_size=20),
        max_size=5,
    ),
    st.text(max_size=8),
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
)
def test_property_changing_or_adding_any_value_changes_the_mac(
    row: dict[str, RowValue], column: str, value: RowValue
) -> None:
    changed = {**row, column: value}
    if changed != row or type(row.get(column)) is not type(value):
        assert row_mac(KEY, GATEWAY, "t", changed) != row_mac(KEY, GATEWAY, "t", row)
