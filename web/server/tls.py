"""The endpoint's TLS context.

TLS 1.2 is the floor; TLS 1.2 suites are ECDHE with AES-GCM or ChaCha20-Poly1305
only (TLS 1.3 suites are all AEAD); no compression, no renegotiation.  The
private key goes from the vault to OpenSSL through anonymous in-memory files
(memfd), so it never touches the disk in clear.
"""

from __future__ import annotations

import ssl

from agent_keys.private_files import memory_files
from agent_keys.tls_identity import TlsIdentity

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def server_ssl_context(identity: TlsIdentity) -> ssl.SSLContext:
    """The endpoint's TLS settings, with its certificate and key loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    )
    context.set_alpn_protocols(["http/1.1"])  # the one protocol spoken here
    with memory_files(identity.chain_pem, identity.private_key_pem().reveal()) as (chain, key):
        context.load_cert_chain(chain, key)
    return context
