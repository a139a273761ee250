"""What a credential is for (its data source) and what it logs in with.

Both travel in formats: the data source is stored beside a sealed secret and
bound into its associated data, and the login is the EncryptedCredential's
payload.  The rules live here once, so the CLI flags, a sealed payload and the
web form are checked the same way.  Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import b64url
from agent_keys.secret import Secret

DataSourceType = Literal["postgresql", "mysql", "sqlite", "http"]
AuthType = Literal["basic", "key", "anonymous"]
TlsMode = Literal["verify-full", "verify-ca", "require", "disable"]

DATA_SOURCE_TYPES: tuple[DataSourceType, ...] = ("postgresql", "mysql", "sqlite", "http")
AUTH_TYPES: tuple[AuthType, ...] = ("basic", "key", "anonymous")
TLS_MODES: tuple[TlsMode, ...] = ("verify-full", "verify-ca", "require", "disable")
MAX_CA_PEM_CHARS = 65536
MAX_SECRET_BYTES = 8192
MAX_USERNAME_CHARS = 256


@dataclass(frozen=True)
class DataSource:
    """Where a credential is used: the kind of server, its address and database.

    ``server`` is ``HOST[:PORT]`` for postgresql and mysql, a URL or
    ``HOST[:PORT]`` (https assumed) for http, and the database file path for
    sqlite.
    """

    type: DataSourceType
    server: str
    database: str | None = None
    tls: TlsMode = "verify-full"
    ca_pem: str | None = None  # the CA certificate(s) a verifying TLS policy trusts

    def ca_digest(self) -> str | None:
        """base64url SHA-256 over the DER of each CA certificate, in order (None
        without a CA): how the sealed target names the CA (README)."""
        return ca_digest(self.ca_pem)


def parse_data_source_type(value: str) -> DataSourceType:
    """``value`` as a data-source type; ``InvalidInputError`` if it is not one."""
    for known in DATA_SOURCE_TYPES:
        if value == known:
            return known
    raise InvalidInputError(f"data source type must be one of {', '.join(DATA_SOURCE_TYPES)}")


def parse_tls_mode(value: str) -> TlsMode:
    """``value`` as a TLS policy; ``InvalidInputError`` if it is not one."""
    for known in TLS_MODES:
        if value == known:
            return known
    raise InvalidInputError(f"tls must be one of {', '.join(TLS_MODES)}")


def ca_digest(ca_pem: str | None) -> str | None:
    """The SHA-256 (base64url) over the DER of the certificates in ``ca_pem``.

    Raises ``InvalidInputError`` for text that is not one or more PEM certificates.
    """
    if ca_pem is None:
        return None
    if len(ca_pem) > MAX_CA_PEM_CHARS:
        raise InvalidInputError(f"a CA file is at most {MAX_CA_PEM_CHARS} characters")
    try:
        certificates = x509.load_pem_x509_certificates(ca_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as e:
        raise InvalidInputError("the CA file is not PEM certificates") from e
    digest = hashlib.sha256()
    for certificate in certificates:
        digest.update(certificate.public_bytes(Encoding.DER))
    return b64url(digest.digest())


def parse_auth_type(value: str) -> AuthType:
    """``value`` as an auth type; ``InvalidInputError`` if it is not one."""
    for known in AUTH_TYPES:
        if value == known:
            return known
    raise InvalidInputError(f"auth must be one of {', '.join(AUTH_TYPES)}")


def check_login_shape(auth: str, username: str | None, secret: Secret | None) -> None:
    """The one rule set for a login, wherever it comes from (flags, a sealed
    payload, the web form): raises ``InvalidInputError``, never quoting the secret."""
    if auth not in AUTH_TYPES:
        raise InvalidInputError(f"auth must be one of {', '.join(AUTH_TYPES)}")
    if username is not None and not (0 < len(username) <= MAX_USERNAME_CHARS):
        raise InvalidInputError(f"a user name is 1-{MAX_USERNAME_CHARS} characters")
    if username is not None and not username.isprintable():
        raise InvalidInputError("a user name must not contain control characters")
    if secret is not None and len(secret) > MAX_SECRET_BYTES:
        raise InvalidInputError(f"a secret is at most {MAX_SECRET_BYTES} bytes")
    needs_secret = auth != "anonymous"
    if needs_secret and not secret:
        raise InvalidInputError(f"auth {auth} needs a secret")
    if not needs_secret and (secret is not None or username is not None):
        raise InvalidInputError("auth anonymous takes no user name and no secret")
    if auth == "basic" and username is None:
        raise InvalidInputError("auth basic needs a user name")
    if secret is not None:
        try:
            text = secret.reveal_text()
        except UnicodeDecodeError as e:
            raise InvalidInputError("a secret must be UTF-8 text") from e
        if "\x00" in text:
            raise InvalidInputError("a secret cannot contain a NUL character")
