"""Who may reach the vault through the endpoint, and what they may do.

- ``policy``: the roles and the one function that decides an action.
- ``accounts``: local users, sign-in with lockout, web sessions.
- ``grants``: API tokens and single-use entry links.
- ``bearer_secrets``: random bearer secrets, stored only as hashes.
- ``endpoint_settings``: where the HTTPS endpoint listens.
- ``destination_policy``: where connection tests may go (the admin's allow-lists).
"""
