"""The keystore binding format: what it writes it reads back; anything else is one error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_keys.errors import InvalidInputError, StorageError
from vault.format.keystore_binding import encode_binding, parse_binding

FILE = {"kind": "file", "key_file": "keystore.key"}
PKCS11 = {
    "kind": "pkcs11",
    "module": "/usr/lib/softhsm/libsofthsm2.so",
    "module_sha256": "0f" * 32,
    "token_label": "gateway",
    "key_label": "gwvault-1234",
    "created_key": "yes",
}


@pytest.mark.parametrize("settings", [FILE, PKCS11], ids=["file", "pkcs11"])
def test_an_encoded_binding_parses_back_to_its_settings(settings: dict[str, str]) -> None:
    assert parse_binding(encode_binding(settings), "keystore.json") == settings


@pytest.mark.parametrize(
    "settings",
    [{**FILE, "key_file": "../k"}, {**PKCS11, "module": "lib.so"}, {**PKCS11, "extra": "x"}],
)
def test_settings_no_binding_may_hold_are_never_written(settings: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError):
        encode_binding(settings)


def _parses_or_is_refused(content: bytes) -> None:
    try:
        settings = parse_binding(content, "keystore.json")
    except StorageError as e:
        assert "\n" not in str(e)
        return
    assert parse_binding(encode_binding(settings), "keystore.json") == settings


@given(st.binary(max_size=600))
def test_arbitrary_bytes_parse_or_are_one_storage_error(content: bytes) -> None:
    _parses_or_is_refused(content)


@given(
    st.dictionaries(
        st.sampled_from([*PKCS11, "format", "x"]),
        st.one_of(st.text(max_size=20), st.sampled_from(["", "/", "../k", "A" * 64]), st.none()),
        max_size=3,
    ),
    st.sampled_from([FILE, PKCS11]),
)
def test_mutated_members_parse_or_are_one_storage_error(
    changes: dict[str, object], base: dict[str, str]
) -> None:
    value = {"format": "gwvault-keystore-binding/1", **base, **changes}
    _parses_or_is_refused(json.dumps(value).encode())
