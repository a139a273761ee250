"""The formats gwvault writes and reads: bytes in, typed objects out, no I/O.

Nothing here opens a file, a socket or a database, or reads a clock or an RNG
it was not handed (design.md; ``tests/test_layering.py`` holds it to that).

- ``encrypted_credential``: the EncryptedCredential JWE profile (seal, open).
- ``jose_codec``: strict base64url and JSON for the JOSE and bundle formats.
- ``envelope``: the at-rest envelope of a stored secret (DEK, AAD binding).
- ``recovery_bundle``: the self-describing file that moves a gateway.
- ``audit_chain``: how an audit entry is hashed, MACed and checkpointed.
- ``keystore_binding``: the keystore binding file (which key file or PKCS#11 module).
"""
