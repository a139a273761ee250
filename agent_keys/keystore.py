"""What a keystore is: the machine-bound holder of the KEK that wraps the GMK.

A keystore wraps and unwraps the gateway master key for daily use, without a
passphrase.  Backends: ``FileKeystore`` (a 0600 key file) and
``Pkcs11Keystore`` (an AES key inside an HSM).
The vault records which backend and where in its settings, never the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from agent_keys.secret import Secret

PinSource = Callable[[], Secret]
"""Asked for an HSM's user PIN at the moment it is needed; never stored."""


class Keystore(Protocol):
    """A machine-bound key-encryption key for the gateway master key."""

    @property
    def kind(self) -> str:
        """Short backend name shown in ``gwvault status`` (``file``, ``pkcs11``)."""
        ...

    def wrap_master_key(self, master_key: Secret, context: bytes) -> bytes:
        """Wrap the GMK for storage in the vault database."""
        ...

    def unwrap_master_key(self, wrapped: bytes, context: bytes) -> Secret:
        """Unwrap the GMK; raises ``IntegrityError`` or ``KeyBackendError``."""
        ...

    def settings(self) -> dict[str, str]:
        """Non-secret settings that locate this keystore again (stored in the vault)."""
        ...

    def describe(self) -> dict[str, str]:
        """Non-secret facts for ``gwvault keystore show``."""
        ...

    def retire(self) -> str:
        """Destroy the KEK once nothing is wrapped under it; says what it did."""
        ...
