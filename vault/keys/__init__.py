"""The life of the gateway's keys in the vault.

- ``keystore_binding``: which keystore unlocks the vault, and opening it.
- ``keystore_migration``: rebinding the GMK to another keystore.
- ``rotation``: new GMK versions, every data key rewrapped, resumably.
- ``certificates``: gateway key pair versions: rotate, import, retire, export.
- ``recovery``: verify and change the admin's recovery key.
- ``relocation``: recovery bundles: export, and restore on a new machine.
- ``tls``: the HTTPS endpoint's own TLS identity.
"""
