"""The audit trail: appending entries, and the auditor's side of reading them.

- ``trail``: ``AuditTrail``, which records every step inside the change's
  own transaction (fail closed), keeps the MACed head note and signs
  checkpoints and rotation records.
- ``log``: ``AuditLog``: filters, a credential's timeline, verify, export,
  prune.
- ``verify``: ``TrailVerifier``, one streaming pass for the vault and for
  exports; ``report``: its verdict, ``TrailReport``.
- ``mark``: the MACed "verified through entry N" mark of the last full check;
  ``incremental``: the page's and the API's check of the entries after it;
  ``background``: the server's periodic full check that moves it.
- ``signer_trust``: ``SignerTrust``, which certificates may sign for which
  entries, from the one trusted and the rotation records.
- ``export``: the JSON Lines export and its strict reader
  (``docs/audit-format.md``).
"""
