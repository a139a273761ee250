"""Who may reach the vault through the endpoint, and what they may do.

- ``policy``: the roles and the one function that decides an action.
- ``accounts``: local users (the vault keeps an admin), sign-in with lockout, web sessions.
- ``password_hashes``: users' Argon2id password hashes.
- ``acting_caller``: what user and token management needs of an endpoint caller.
- ``grants``: API tokens and single-use entry links.
- ``bearer_secrets``: random bearer secrets, stored only as hashes.
- ``endpoint_settings``: where the HTTPS endpoint listens.
- ``destination_policy``: where connection tests may go (the admin's allow-lists).
"""
