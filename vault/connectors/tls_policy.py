"""A data source's TLS mode as a Python ``ssl`` context (MySQL, HTTP).

    verify-full  TLS required; chain verified against the CA (or the system
                 store) and the certificate must name the host
    verify-ca    TLS required; chain verified against the CA, host name not checked
    require      TLS required; nothing verified: protects against a listener,
                 not an impersonator
    disable      no TLS
    prefer       legacy (binding version 1): TLS when offered, nothing verified

Only verify-full and verify-ca let the password itself reach the server
(``sends_password``): the testers refuse the plaintext and RSA authentication
paths otherwise (threat T-CN-1).  PostgreSQL gets the same modes from libpq
(``vault.connectors.postgresql``).
"""

from __future__ import annotations

import ssl

from vault.format.data_source import VERIFYING_TLS_MODES, TlsMode


def sends_password(mode: TlsMode) -> bool:
    """Whether a server may be given the password itself: only a verified one."""
    return mode in VERIFYING_TLS_MODES


def client_context(mode: TlsMode, ca_pem: str | None) -> ssl.SSLContext | None:
    """The client context for ``mode`` (None for disable).

    Raises ``ssl.SSLError`` if the CA text does not load (it was checked when
    stored, so only a damaged or tampered row gets here, and that fails to open
    first).
    """
    if mode == "disable":
        return None
    if mode in VERIFYING_TLS_MODES:
        # No CA given: the system's store (create_default_context loads it).
        context = ssl.create_default_context(cadata=ca_pem)
        context.check_hostname = mode == "verify-full"
    else:
        # require and legacy prefer: encryption against a passive listener only.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
