"""How a command finds and opens the vault: ``--data-dir``, ``--pin-file``, keystore flags."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from vault.cli.input import pin_source
from vault.keys.keystore_binding import KeystoreSpec

if TYPE_CHECKING:
    from vault.gateway import Gateway


def data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir)


def open_for_cli(args: argparse.Namespace) -> Gateway:
    """The vault of ``--data-dir``, for the local user, asking for a PIN only if needed."""
    # Imported on use: the parser imports the command modules, and --help
    # should not load the key hierarchy.
    from vault.context import RequestContext
    from vault.gateway import Gateway

    return Gateway.open(data_dir(args), RequestContext.for_cli(), pin_source(args.pin_file))


def keystore_spec(args: argparse.Namespace) -> KeystoreSpec:
    """The keystore the ``--keystore``/``--to`` flags name (``flags.add_keystore_flags``)."""
    return KeystoreSpec(
        kind=args.keystore_kind,
        pkcs11_module=args.pkcs11_module,
        token_label=args.token_label,
        key_label=args.key_label,
    )
