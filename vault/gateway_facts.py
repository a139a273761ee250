"""Facts about the gateway that a long-lived process checked once and keeps.

A server thread or an agent keeps its vault open across requests; parsing and
checking the current certificate, unwrapping the private keys and deriving the
row key on every request cost more than the rest of a request.  ``GatewayFacts``
keeps each such value, as it was when it was loaded *and checked*, together
with the vault's facts generation at that moment (a number every change of a
key, certificate or setting row bumps, in the same transaction, by triggers:
``vault.store.schema`` upgrade 5).  Each use reads that one number; a value
is served only while the number is the one it was loaded at, so a change
committed by any process (``gwvault keys rotate``, ``cert import``) is seen
by the next use.  A value is never put into the cache inside a write: a
change under way sees its own rows (its bump of the generation misses every
kept value), and a rolled-back one leaves nothing behind.

Why a checked value kept is no weaker than checking per request: the checks
(row seals, certificate to key binding) prove a row was written by gwvault
with the key; they say nothing new the second time about the same row.  What
a per-request check adds is noticing a *different* row, and any different
row comes with a bumped generation, which drops the cache and checks the new
row before it is used.  Someone who writes the file without gwvault and also
keeps the generation still (dropping the triggers) gets the genuine, checked
value served instead of their row, where a per-request check would have
refused theirs; the tampering is still found by the next reader without a
cache (the CLI, ``audit verify``) and whenever the cache reloads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from vault.store.vault_store import VaultStore

T = TypeVar("T")


class GatewayFacts:
    """Checked facts of one vault, shared by the threads of one process.

    No lock: the facts live in one ``(generation, values)`` pair that is
    replaced whole (an atomic assignment), so a reader never sees half of an
    update, and a forked child never inherits a lock held by a thread it does
    not have.  Two threads filling it at once may lose one's value: that is a
    later reload, never a wrong value, because every value is served only
    against the generation it was loaded at.
    """

    def __init__(self) -> None:
        self._held: tuple[int, dict[str, Any]] = (-1, {})

    def get(self, store: VaultStore, name: str, load: Callable[[], T]) -> T:
        """The fact ``name``: the kept value if the vault is unchanged since it
        was loaded, else ``load()`` (which checks what it reads) kept anew.

        Raises what ``load`` raises; nothing is kept then.
        """
        generation = store.facts_generation()
        held_at, values = self._held
        # Served inside a write too: only committed generations are kept, and
        # a write that changed a fact's row sees a newer number than any of them.
        if held_at == generation and name in values:
            kept: T = values[name]
            return kept
        value = load()
        # Kept only if nothing changed while it was read (every change bumps
        # the generation in its own transaction, so an equal number after the
        # load means every row the load read belongs to that generation), and
        # never from a write: its rows may yet be rolled back.
        if not store.in_write_transaction and store.facts_generation() == generation:
            held_at, values = self._held
            self._held = (generation, {**(values if held_at == generation else {}), name: value})
        return value

    def forget(self) -> None:
        """Drop every kept value (the vault file was replaced)."""
        self._held = (-1, {})
