import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_keys.errors import IntegrityError
from agent_keys.keywrap import unwrap_key, wrap_key
from agent_keys.master_key import MasterKey
from agent_keys.randomness import system_random
from agent_keys.secret import Secret

KEK = Secret(bytes(range(32)))
KEY = Secret(b"\xaa" * 32)


def test_wrap_round_trips_and_binds_context() -> None:
    wrapped = wrap_key(KEK, KEY, b"ctx-a", system_random)
    assert unwrap_key(KEK, wrapped, b"ctx-a") == KEY
    with pytest.raises(IntegrityError):
        unwrap_key(KEK, wrapped, b"ctx-b")
    with pytest.raises(IntegrityError):
        unwrap_key(Secret(b"\x00" * 32), wrapped, b"ctx-a")


@given(position=st.integers(min_value=0, max_value=60), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_fails_with_the_one_error(position: int, bit: int) -> None:
    wrapped = bytearray(wrap_key(KEK, KEY, b"ctx", system_random))
    wrapped[position % len(wrapped)] ^= 1 << bit
    with pytest.raises(IntegrityError) as failure:
        unwrap_key(KEK, bytes(wrapped), b"ctx")
    assert "wrapped key did not unwrap" in str(failure.value)


@pytest.mark.parametrize("wrapped", [b"", b"\x01", b"\x02" + b"\x00" * 60, b"\x01" * 9000])
def test_malformed_wrapped_keys_fail_the_same_way(wrapped: bytes) -> None:
    with pytest.raises(IntegrityError):
        unwrap_key(KEK, wrapped, b"ctx")


def test_master_key_binds_its_version() -> None:
    gmk1 = MasterKey(1, KEK)
    wrapped = gmk1.wrap(KEY, b"dek", system_random)
    assert gmk1.unwrap(wrapped, b"dek") == KEY
    with pytest.raises(IntegrityError):
        MasterKey(2, KEK).unwrap(wrapped, b"dek")
