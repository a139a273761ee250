"""The gateway master key (GMK): a versioned 256-bit key that wraps every other key.

The GMK itself is stored only wrapped, twice: by the machine's keystore for
daily use and by the recovery KEK for relocation (design.md, key hierarchy).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_keys.keywrap import KEY_BYTES, unwrap_key, wrap_key
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret


@dataclass(frozen=True)
class MasterKey:
    """One version of the gateway master key."""

    version: int
    key: Secret

    @classmethod
    def generate(cls, version: int, random: RandomSource) -> MasterKey:
        return cls(version=version, key=Secret(random(KEY_BYTES)))

    def wrap(self, key: Secret, context: bytes, random: RandomSource) -> bytes:
        """Wrap a key (data key, gateway private key) under this GMK version."""
        return wrap_key(self.key, key, self._bound(context), random)

    def unwrap(self, wrapped: bytes, context: bytes) -> Secret:
        """Unwrap what ``wrap`` made; raises ``IntegrityError``."""
        return unwrap_key(self.key, wrapped, self._bound(context))

    def _bound(self, context: bytes) -> bytes:
        # The GMK version is part of every context, so a row that claims the
        # wrong version fails instead of silently using another key.
        return context + b"|gmk=" + str(self.version).encode("ascii")


def master_key_context(gateway_id: str, version: int) -> bytes:
    """What a wrapped GMK is bound to: this gateway and this version."""
    return f"gwvault/gmk/v1|{gateway_id}|{version}".encode()
