"""What a credential is for (its data source) and what it logs in with.

Both travel in formats: the data source is stored beside a sealed secret and
bound into its associated data, and the login is the EncryptedCredential's
payload.  The rules live here once, so the CLI flags, a sealed payload and the
web form are checked the same way.  Pure: no I/O.

A data source's TLS policy is part of where its secret may be sent: the mode
and the CA certificates to verify against (threat T-CN-1).  What each mode means
per type is in ``vault.connectors`` and the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret
from vault.format.ca_certificates import ca_digest as certificates_digest
from vault.format.ca_certificates import canonical_ca_pem

DataSourceType = Literal["postgresql", "mysql", "sqlserver", "sqlite", "http"]
AuthType = Literal["basic", "key", "anonymous"]
TlsMode = Literal["verify-full", "verify-ca", "require", "disable", "prefer"]

DATA_SOURCE_TYPES: tuple[DataSourceType, ...] = (
    "postgresql", "mysql", "sqlserver", "sqlite", "http",
)  # fmt: skip
AUTH_TYPES: tuple[AuthType, ...] = ("basic", "key", "anonymous")
# The modes a person may choose, strongest first.  "prefer" is not among them:
# it is what credentials stored before TLS policies existed get (binding
# version 1, ``LEGACY_TLS_MODE``), never a choice for a new one.
TLS_MODES: tuple[TlsMode, ...] = ("verify-full", "verify-ca", "require", "disable")
LEGACY_TLS_MODE: TlsMode = "prefer"
VERIFYING_TLS_MODES: tuple[TlsMode, ...] = ("verify-full", "verify-ca")
# Strength order for "is this change a weakening": verification beats
# encryption, and legacy "prefer" (encrypted if offered, never verified)
# sits between require and disable.
_TLS_STRENGTH: dict[str, int] = {
    "verify-full": 4, "verify-ca": 3, "require": 2, "prefer": 1, "disable": 0,
}  # fmt: skip
MAX_SECRET_BYTES = 8192
MAX_USERNAME_CHARS = 256


@dataclass(frozen=True)
class DataSource:
    """Where a credential is used: the kind of server, its address and database.

    ``server`` is ``HOST[:PORT]`` for postgresql, mysql and sqlserver, a URL or
    ``HOST[:PORT]`` (https assumed) for http, and the database file path for
    sqlite.  ``tls`` is the TLS policy and ``ca_pem`` the CA certificate(s) it
    verifies the server against (None: the system's CA store); sqlite has no
    TLS and ignores the mode.
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


def ca_digest(ca_pem: str | None) -> str | None:
    """``ca_certificates.ca_digest`` of ``ca_pem``, or None without a CA."""
    return None if ca_pem is None else certificates_digest(ca_pem)


def parse_auth_type(value: str) -> AuthType:
    """``value`` as an auth type; ``InvalidInputError`` if it is not one."""
    for known in AUTH_TYPES:
        if value == known:
            return known
    raise InvalidInputError(f"auth must be one of {', '.join(AUTH_TYPES)}")


def parse_tls_mode(value: str, *, legacy: bool = False) -> TlsMode:
    """``value`` as a TLS mode a person may choose (or, with ``legacy``, the mode
    of a row stored before TLS policies); ``InvalidInputError`` otherwise."""
    for known in (*TLS_MODES, LEGACY_TLS_MODE) if legacy else TLS_MODES:
        if value == known:
            return known
    raise InvalidInputError(f"the TLS mode must be one of {', '.join(TLS_MODES)}")


def default_tls_mode(source_type: DataSourceType) -> TlsMode:
    """The mode a new credential gets when none is given: verify (sqlite has no TLS)."""
    return "disable" if source_type == "sqlite" else "verify-full"


def tls_mode_for(source_type: DataSourceType, given: str | None) -> TlsMode:
    """The mode the edges store: ``given`` checked, or the type's default."""
    if given is None:
        return default_tls_mode(source_type)
    mode = parse_tls_mode(given)
    if source_type == "sqlite" and mode != "disable":
        raise InvalidInputError("a sqlite data source has no TLS; leave the TLS mode out")
    return mode


def check_tls_policy(source: DataSource) -> None:
    """The TLS rules common to every type; raises ``InvalidInputError``.

    A CA only with a verifying mode; verify-ca needs one (verifying a chain
    against the public CA store without the host name proves nothing); the CA
    must already be canonical (``canonical_ca_pem``), as the edges make it.
    """
    if source.tls not in _TLS_STRENGTH:
        raise InvalidInputError(f"the TLS mode must be one of {', '.join(TLS_MODES)}")
    if source.ca_pem is None:
        if source.tls == "verify-ca":
            raise InvalidInputError("TLS mode verify-ca needs the CA certificate (--tls-ca)")
        return
    if source.type == "sqlite":
        raise InvalidInputError("a sqlite data source has no TLS; it takes no CA certificate")
    if source.tls not in VERIFYING_TLS_MODES:
        raise InvalidInputError(
            f"a CA certificate is used only to verify; TLS mode {source.tls} verifies nothing"
        )
    if canonical_ca_pem(source.ca_pem) != source.ca_pem:
        raise InvalidInputError("the CA certificates are not in canonical PEM form")


def weakens_tls(before: DataSource, after: DataSource) -> bool:
    """Whether ``after`` lets the secret go to servers ``before`` would refuse:
    a weaker mode, or a verifying mode that trusts other CA certificates."""
    if _TLS_STRENGTH.get(after.tls, 0) < _TLS_STRENGTH.get(before.tls, 0):
        return True
    return after.tls in VERIFYING_TLS_MODES and after.ca_pem != before.ca_pem


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
