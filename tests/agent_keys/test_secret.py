import copy
import pickle

import pytest

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret


def test_secret_never_prints_its_value() -> None:
    secret = Secret.from_text("hunter2-canary")
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % (secret,)):  # noqa: UP031
        assert "hunter2" not in shown
        assert shown == "Secret(<redacted>, len=14)"


def test_secret_refuses_pickling_and_copying_through_pickle() -> None:
    secret = Secret(b"k" * 32)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        copy.deepcopy(secret)


def test_secret_equality_is_by_value_and_unhashable() -> None:
    assert Secret(b"abc") == Secret(b"abc")
    assert Secret(b"abc") != Secret(b"abd")
    assert Secret(b"abc") != b"abc"
    with pytest.raises(TypeError):
        hash(Secret(b"abc"))


def test_secret_reveals_only_on_request() -> None:
    secret = Secret.from_text("pässword")
    assert secret.reveal() == "pässword".encode()
    assert secret.reveal_text() == "pässword"
    assert len(secret) == len("pässword".encode())


def test_secret_holds_bytes_only() -> None:
    with pytest.raises(TypeError):
        Secret("text")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["\ud800", "pass\udfffword", "\udcff"])
def test_text_that_is_no_unicode_is_invalid_input_and_never_in_the_error(text: str) -> None:
    # A lone surrogate (from a JSON escape, or undecodable bytes in the
    # environment) cannot be UTF-8: one clear error, not a UnicodeEncodeError
    # carrying the whole text in its .object.
    with pytest.raises(InvalidInputError, match="lone surrogate") as refused:
        Secret.from_text(text)
    assert refused.value.__cause__ is None and refused.value.__context__ is None
    assert Secret.from_text("pa\U0001f600ss").reveal() == "pa\U0001f600ss".encode()
