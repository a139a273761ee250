"""Pieces the parser and the command groups share: the parser class, the keystore
and target flags, and what the target flags mean.

Command groups register their own subcommands (``add_parsers``) with what is
here, so they never import the parser that calls them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn, TypeAlias

from agent_keys.errors import InvalidInputError
from vault.cli.input import read_trusted_file
from vault.cli.output import EXIT_USAGE
from vault.connectors.cleartext import cleartext_warning
from vault.connectors.dispatch import validate_target
from vault.format.ca_certificates import MAX_CA_PEM_CHARS, canonical_ca_pem
from vault.format.data_source import (
    DATA_SOURCE_TYPES,
    TLS_MODES,
    DataSource,
    parse_data_source_type,
    tls_mode_for,
)
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


def add_target_flags(parser: argparse.ArgumentParser, why: str, *, required: bool = True) -> None:
    """Where the secret may be sent: a sealed value names it, a stored credential keeps it.

    Not ``required`` where a connection string may name the target instead
    (``target_from_flags`` then asks for them)."""
    parser.add_argument("--type", required=required, choices=DATA_SOURCE_TYPES, help=why)
    parser.add_argument(
        "--server",
        required=required,
        metavar="HOST[:PORT]",
        help="host, URL (http) or file path (sqlite)",
    )
    parser.add_argument("--database", metavar="DB")
    parser.add_argument(
        "--tls",
        choices=TLS_MODES,
        help="where the secret may be sent: verify-full (default; sqlite: disable), verify-ca,"
        " require (encrypted, unverified), disable",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="FILE.pem",
        help="CA certificate(s) to verify the server against (default: the system's CA store)",
    )
    parser.add_argument(
        "--allow-cleartext",
        action="store_true",
        help="accept a server on another host reached without TLS (http://, --tls disable);"
        " refused otherwise",
    )


def target_from_flags(args: argparse.Namespace) -> DataSource:
    """The data source of ``--type --server --database --tls --tls-ca`` (the CA read once,
    from a file only root or the caller can write, and made canonical)."""
    if args.type is None or args.server is None:
        raise InvalidInputError("give --type and --server, or --connection-string")
    source_type = parse_data_source_type(args.type)
    source = DataSource(
        type=source_type,
        server=args.server,
        database=args.database,
        tls=tls_mode_for(source_type, args.tls),
        ca_pem=ca_from_file(args.tls_ca) if args.tls_ca is not None else None,
    )
    validate_target(source)
    if not (source.type == "http" and _login_auth(args) not in (None, "anonymous")):
        # (A Basic or Bearer login never goes to an http:// URL, allowed or not:
        # validate_data_source refuses it with that reason, T-CN-1.)
        consent_to_cleartext(source, args.allow_cleartext)
    return source


def _login_auth(args: argparse.Namespace) -> str | None:
    """The auth the login flags give (None: no login flags, or a sealed value carries it)."""
    if not hasattr(args, "auth") or getattr(args, "encrypted_credential", None) is not None:
        return None
    return str(args.auth or "basic")


def consent_to_cleartext(source: DataSource, allowed: bool) -> None:
    """A target on the network without TLS: refused, or warned about with --allow-cleartext."""
    warning = cleartext_warning(source)
    if warning is None:
        return
    if not allowed:
        raise InvalidInputError(f"{warning}; use TLS, or add --allow-cleartext to accept that")
    sys.stderr.write(f"gwvault: warning: {warning}\n")


def ca_from_file(path: str) -> str:
    raw = read_trusted_file(Path(path), "CA certificate", MAX_CA_PEM_CHARS)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"the CA certificate file {path} is not PEM text") from e
    return canonical_ca_pem(text)
