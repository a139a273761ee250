"""What the metrics endpoint reports of the vault, and who may scrape it.

- ``settings``: the scrape token (stored hashed) and whether series name credentials;
- ``vault_facts``: the vault's numbers at one moment, read-only and bounded in cost.
"""
