"""``gwvault diagnostics``: a zip for support that holds no secret.

``vault.diagnostics.bundle``: ``write_bundle`` and ``MEMBERS``;
``vault.diagnostics.members``: one function per member's content.
"""
