"""Pieces the parser and the command groups share: the parser class, the keystore flags.

Command groups register their own subcommands (``add_parsers``) with what is
here, so they never import the parser that calls them.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, TypeAlias

from vault.cli.output import EXIT_USAGE
from vault.keys.keystore_binding import KEYSTORE_KINDS


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see: {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


Commands: TypeAlias = "argparse._SubParsersAction[OneLineParser]"
"""Where a command group adds its subcommands."""


def add_keystore_flags(parser: argparse.ArgumentParser, flag: str, default: str | None) -> None:
    parser.add_argument(
        flag,
        dest="keystore_kind",
        choices=KEYSTORE_KINDS,
        default=default,
        required=default is None,
        help="where the key that unlocks the vault lives: a 0600 file, or a PKCS#11 token",
    )
    parser.add_argument("--pkcs11-module", metavar="PATH", help="the token's PKCS#11 library")
    parser.add_argument("--token-label", metavar="LABEL")
    parser.add_argument(
        "--key-label", metavar="L", help="AES key to create or adopt (default gwvault-<gateway id>)"
    )
