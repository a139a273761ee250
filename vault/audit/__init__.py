"""The audit trail: appending entries, and the auditor's side of reading them.

- ``trail``: ``AuditTrail``, which records every step inside the change's
  own transaction (fail closed) and signs checkpoints.
- ``log``: ``AuditLog``: filters, a credential's timeline, verify, export,
  prune.
- ``verify``: ``TrailVerifier``, one streaming pass for the vault and for
  exports.
- ``export``: the JSON Lines export and its strict reader.
"""
