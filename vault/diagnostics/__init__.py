"""``gwvault diagnostics``: a zip for support that holds no secret.

``vault.diagnostics.bundle``: ``build_bundle`` (the zip, in memory) and ``MEMBERS``;
``vault.diagnostics.members``: one function per member's content.
"""
