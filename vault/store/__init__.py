"""The vault database: its schema, its rows as typed records, its engine.

- ``vault_store``: ``VaultStore``, typed access to the tables; every change
  and its audit entry in one ``write()`` transaction.
- ``schema``: the DDL, as a first schema and numbered upgrades.
- ``records``: the rows as frozen dataclasses (no secret in clear).
"""
