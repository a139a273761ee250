"""Key material of the gateway agent.

Recovery-key KDF, key wrapping, keystores, and the gateway key pair and
certificate.  Nothing here opens a database; the keystores are the only I/O.
``process_hardening`` keeps unlocked keys out of core dumps, swap and ptrace.
"""

from agent_keys.errors import (
    AccessDeniedError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeyBackendError,
    NotFoundError,
    StorageError,
    VaultError,
)
from agent_keys.secret import Secret

__all__ = [
    "AccessDeniedError",
    "ConflictError",
    "IntegrityError",
    "InvalidInputError",
    "KeyBackendError",
    "NotFoundError",
    "Secret",
    "StorageError",
    "VaultError",
]
