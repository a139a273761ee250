"""``Secret``: the one carrier of secret bytes in gwvault.

A ``Secret`` never shows its content by accident: ``repr``/``str``/``format``
print ``Secret(<redacted>, len=N)``, pickling and copying to a plain ``bytes``
need an explicit call, and equality is constant-time.  Python cannot promise
that the bytes are wiped from memory; the threat model states that limit.
"""

from __future__ import annotations

import hmac
from typing import NoReturn

from agent_keys.errors import InvalidInputError


class Secret:
    """Secret bytes (a password, a key) that refuse to be printed or pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray):
            raise TypeError("Secret holds bytes; encode text first")
        self._value = bytes(value)

    @classmethod
    def from_text(cls, text: str) -> Secret:
        """Wrap a text secret (a password typed by a person) as UTF-8 bytes.

        Raises ``InvalidInputError`` for text with a lone surrogate (a JSON
        ``\\ud800`` escape, undecodable bytes in an environment variable),
        which has no UTF-8 form.
        """
        try:
            value = text.encode("utf-8")
        except UnicodeEncodeError:
            value = None
        if value is None:
            # Raised outside the handler: the UnicodeEncodeError, whose .object
            # is the whole secret, must not ride along as __context__.
            raise InvalidInputError("the secret is not valid text: it holds a lone surrogate")
        return cls(value)

    def reveal(self) -> bytes:
        """Return the secret bytes. Call only where the bytes are consumed."""
        return self._value

    def reveal_text(self) -> str:
        """Return the secret as text; raises ``UnicodeDecodeError`` if it is not UTF-8."""
        return self._value.decode("utf-8")

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Secret(<redacted>, len={len(self._value)})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    __hash__ = None  # type: ignore[assignment]  # a hash would leak a function of the value

    def __reduce__(self) -> NoReturn:
        # Tink refuses to serialise key handles; so do we (no secret in a pickle,
        # a multiprocessing queue or a cache).
        raise TypeError("a Secret cannot be pickled")

    def __bool__(self) -> bool:
        return bool(self._value)
