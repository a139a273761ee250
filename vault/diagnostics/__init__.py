"""``gwvault diagnostics``: a zip for support that holds no secret.

``write_bundle`` assembles the members (``MEMBERS``) and writes the file;
each member comes from one function of ``vault.diagnostics.members``.
"""

from vault.diagnostics.bundle import MEMBERS, write_bundle

__all__ = ["MEMBERS", "write_bundle"]
