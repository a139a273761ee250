"""At-rest envelope of a stored credential: a fresh data key per write.

    DEK = 32 random bytes
    ciphertext = 0x01 || nonce || AES-256-GCM(DEK, nonce, secret, aad=binding)
    wrapped DEK = GMK.wrap(DEK, "gwvault/dek/v1|<credential id>")

The associated data binds the secret to everything the vault stores beside it
(gateway, credential id, name, version, type, server, database, auth, user
name, and from binding version 2 the TLS mode and CA certificates).  Someone
who can write the database file but holds no key cannot move a secret to
another row, point a stored credential at a server of theirs so that "test
connection" sends them the password (T-AR-2), nor weaken its TLS policy so an
impersonator gets it (T-AR-4): the open fails.

Binding versions: 1 is every row stored before TLS policies existed (its AAD
has no TLS fields, and the store gives it the fixed legacy mode, never the
column's value); 2 binds ``tls`` and ``ca_pem``.  The version picks the AAD
prefix, so changing it makes the row fail to open as well.

Pure: no I/O; randomness is handed in.  Rotating the GMK rewraps the DEK only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent_keys.errors import IntegrityError
from agent_keys.master_key import MasterKey
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret
from vault.format.jose_codec import compact_json

_FORMAT = b"\x01"
BINDING_VERSION = 2
"""The binding version every new write uses."""
_NONCE_BYTES = 12
_OPEN_FAILED = "a stored credential did not open (wrong key, or its stored record was changed)"


@dataclass(frozen=True)
class CredentialBinding:
    """The stored facts a credential's secret is cryptographically bound to."""

    gateway_id: str
    credential_id: str
    name: str
    version: int
    type: str
    server: str
    database: str | None
    auth: str
    username: str | None
    binding_version: int = BINDING_VERSION
    tls: str = "verify-full"
    ca_pem: str | None = None

    def associated_data(self) -> bytes:
        """The AAD of this binding version; ``IntegrityError`` for an unknown one."""
        facts = asdict(self)
        del facts["binding_version"]  # it picks the prefix instead
        if self.binding_version == 1:
            # Exactly the AAD written before version 2: no TLS fields.
            del facts["tls"], facts["ca_pem"]
            return b"gwvault/credential/v1|" + compact_json(facts)
        if self.binding_version == 2:
            return b"gwvault/credential/v2|" + compact_json(facts)
        raise IntegrityError(_OPEN_FAILED)

    def dek_context(self) -> bytes:
        return dek_context(self.gateway_id, self.credential_id)


def dek_context(gateway_id: str, credential_id: str) -> bytes:
    """What a wrapped data key is bound to: its gateway and credential (not the
    credential version, so a GMK rotation rewraps without touching the rest)."""
    return f"gwvault/dek/v1|{gateway_id}|{credential_id}".encode()


@dataclass(frozen=True)
class SealedSecret:
    """What the store keeps for one credential version."""

    gmk_version: int
    wrapped_dek: bytes
    ciphertext: bytes


def seal_at_rest(
    gmk: MasterKey, binding: CredentialBinding, secret: Secret, random: RandomSource
) -> SealedSecret:
    """Encrypt ``secret`` under a fresh data key and wrap that key under ``gmk``."""
    dek = Secret(random(32))
    nonce = random(_NONCE_BYTES)
    body = AESGCM(dek.reveal()).encrypt(nonce, secret.reveal(), binding.associated_data())
    return SealedSecret(
        gmk_version=gmk.version,
        wrapped_dek=gmk.wrap(dek, binding.dek_context(), random),
        ciphertext=_FORMAT + nonce + body,
    )


def open_at_rest(gmk: MasterKey, binding: CredentialBinding, sealed: SealedSecret) -> Secret:
    """Decrypt a stored secret; raises ``IntegrityError`` on any mismatch."""
    if sealed.gmk_version != gmk.version:
        raise IntegrityError(_OPEN_FAILED)
    try:
        dek = gmk.unwrap(sealed.wrapped_dek, binding.dek_context())
    except IntegrityError as e:
        raise IntegrityError(_OPEN_FAILED) from e
    blob = sealed.ciphertext
    if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _FORMAT:
        raise IntegrityError(_OPEN_FAILED)
    try:
        plain = AESGCM(dek.reveal()).decrypt(
            blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :], binding.associated_data()
        )
    except InvalidTag as e:
        raise IntegrityError(_OPEN_FAILED) from e
    return Secret(plain)
