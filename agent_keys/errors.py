"""The one error hierarchy of gwvault.

It lives in ``agent_keys`` because that is the innermost package: ``vault`` and
``web`` import it from here (re-exported by ``vault.errors``).  Each subclass is a
kind of failure a caller can act on; the CLI and the HTTP API map them to exit
codes and status codes in exactly one place each.

Messages are shown to people, so they say what went wrong and what to do, and
never carry a secret.
"""


class VaultError(Exception):
    """Base of every error gwvault raises on purpose."""


class InvalidInputError(VaultError):
    """The caller's input is malformed, weak or contradictory; nothing changed."""


class NotFoundError(VaultError):
    """The named credential, key version or vault does not exist."""


class ConflictError(VaultError):
    """The operation would overwrite something that already exists."""


class AccessDeniedError(VaultError):
    """The caller may not do this (file permissions, roles)."""


class IntegrityError(VaultError):
    """A decryption or verification failed.

    Every cryptographic failure (bad encoding, wrong key, changed byte, wrong
    binding) is this one type with a message that does not say which check
    failed, so no padding or format oracle exists (the Fernet ``InvalidToken``
    rule).
    """


class KeyBackendError(VaultError):
    """The keystore (key file or HSM) is missing, unreadable or refuses."""


class StorageError(VaultError):
    """The vault database cannot be read or written."""


class DataSourceError(VaultError):
    """A job's connection to its data source could not be made (refused login,
    unreachable server, TLS that fails the credential's policy).  ``reason`` is
    the connection-test reason code (``vault.connectors.connection``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
