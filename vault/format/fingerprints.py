"""Certificate fingerprints as people compare them.

Browsers, curl and ``openssl x509 -fingerprint -sha256`` show a certificate's
SHA-256 as upper-case hex pairs joined by colons; that is the form a person
checks against what a browser's warning page shows.  The vault keeps the same
digest base64url-encoded (the JWE ``kid`` of the gateway certificate, RFC 7638
style), so this module only re-encodes it: one digest, two spellings.
"""

from __future__ import annotations

import base64
import binascii

from agent_keys.errors import InvalidInputError

SHA256_BYTES = 32


def colon_hex(digest: bytes) -> str:
    """``AB:CD:...``: the digest as ``openssl x509 -fingerprint`` prints it."""
    return ":".join(f"{byte:02X}" for byte in digest)


def colon_hex_of_b64url(b64url_digest: str) -> str:
    """The colon-hex spelling of a base64url (unpadded) SHA-256 digest.

    Raises ``InvalidInputError`` for a value that is not one.
    """
    try:
        digest = base64.urlsafe_b64decode(b64url_digest + "=" * (-len(b64url_digest) % 4))
    except (binascii.Error, ValueError) as e:
        raise InvalidInputError("not a base64url SHA-256 digest") from e
    if len(digest) != SHA256_BYTES:
        raise InvalidInputError("not a base64url SHA-256 digest")
    return colon_hex(digest)
