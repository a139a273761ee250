"""What managing users, tokens and entry links needs of an endpoint caller: who it is, and
a decision taken inside the write that acts (``vault.access.callers.Caller``).

A protocol, not an import: ``callers`` reads sessions and tokens through
``accounts`` and ``grants``, which must not import it back.
"""

from __future__ import annotations

from typing import Protocol

from vault.access.policy import Action, Principal
from vault.gateway import Gateway


class ActingCaller(Protocol):
    @property
    def principal(self) -> Principal: ...

    def authorize(self, gateway: Gateway, action: Action) -> Principal:
        """The caller's principal as the database says now, if it may do ``action``;
        ``AccessDeniedError`` otherwise.  Called inside the write that acts."""
        ...
