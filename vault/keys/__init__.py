"""The life of the gateway's keys in the vault.

- ``keystore_binding``: which keystore unlocks the vault, and opening it.
- ``binding_file``: the binding file (``keystore.json``), read, written and rebound crash-safely.
- ``keystore_migration``: rebinding the GMK to another keystore.
- ``module_trust``: accepting a PKCS#11 module's new bytes (``keystore trust-module``).
- ``rotation``: new GMK versions, every data key rewrapped, resumably.
- ``certificates``: gateway key pair versions: rotate, import, retire, export.
- ``recovery``: verify and change the admin's recovery key.
- ``relocation``: recovery bundles: export, and restore on a new machine.
- ``tls``: the HTTPS endpoint's own TLS identity.
"""
