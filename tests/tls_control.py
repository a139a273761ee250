"""The weak control server's TLS context, for tests that prove a TLS check bites."""

from __future__ import annotations

import ssl

from agent_keys.randomness import system_random
from agent_keys.tls_identity import generate_tls_identity
from vault.context import utc_now
from web.server import memory_files

PERMISSIVE = "ALL:@SECLEVEL=0"


def permissive_server_context() -> ssl.SSLContext:
    """TLS 1.0-1.3 and every suite OpenSSL has, with the same kind of key as the endpoint."""
    identity = generate_tls_identity([], utc_now(), system_random)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers(PERMISSIVE)
    with memory_files(identity.chain_pem, identity.private_key_pem().reveal()) as (chain, key):
        context.load_cert_chain(chain, key)
    return context
