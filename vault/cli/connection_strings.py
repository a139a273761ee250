"""``--connection-string`` and ``--connection-string-file``: a target (and a login)
from a connection string (``vault.format.connection_string``).

A string on the command line is seen by every local user (``ps``), so one
with a password in clear is refused there, always; the sealing command reads
such a string from a file (mode 0600) or standard input (``-``).  The string
gives the type, server and database, so those flags are refused beside it;
``--tls`` may only strengthen the string's TLS mode, ``--tls-ca`` adds the CA
a verifying mode trusts, and a cleartext target needs ``--allow-cleartext``
as with the flags.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from agent_keys.errors import InvalidInputError
from vault.cli.flags import ca_from_file, consent_to_cleartext
from vault.cli.input import MAX_INPUT_BYTES, read_private_file, read_public_file, read_secret
from vault.connectors.dispatch import validate_target
from vault.format.connection_string import (
    MAX_CONNECTION_STRING_CHARS,
    SEAL_HINT,
    ConnectionString,
    parse_connection_string,
)
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload

_TARGET_FLAGS = (("type", "--type"), ("server", "--server"), ("database", "--database"))


@dataclass(frozen=True)
class StringTarget:
    """A connection string read and checked, and the target it names."""

    parsed: ConnectionString
    source: DataSource


def add_connection_string_flags(parser: argparse.ArgumentParser, *, sealing: bool) -> None:
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--connection-string",
        metavar="STRING",
        help="ADO.NET (Data Source=...;EncryptedCredential=...) or a postgresql:// or"
        " mysql:// URL: type, server, database"
        + (" and user name; the secret from --secret-file, a pipe or a prompt" if sealing
           else " and the sealed credential")
        + "; never a password (others see the command line)",
    )  # fmt: skip
    given.add_argument(
        "--connection-string-file",
        metavar="FILE|-",
        help="the connection string from FILE"
        + (" (mode 0600: it may hold the password, which is sealed)" if sealing else "")
        + ", or from standard input with -",
    )


def connection_string_given(args: argparse.Namespace) -> bool:
    return (
        getattr(args, "connection_string", None) is not None
        or getattr(args, "connection_string_file", None) is not None
    )


def string_target(args: argparse.Namespace, *, sealing: bool) -> StringTarget:
    """The connection string of the flags and its target, checked as the target flags are.

    ``sealing`` (encrypt-value) lets a string from a file or stdin hold the
    password.  Raises ``InvalidInputError``; no message quotes the string.
    """
    for attribute, flag in _TARGET_FLAGS:
        if getattr(args, attribute, None) is not None:
            raise InvalidInputError(f"the connection string names the target; drop {flag}")
    if args.connection_string is not None:
        parsed = parse_connection_string(args.connection_string)
    else:
        text = _read_string(args.connection_string_file, private=sealing)
        parsed = parse_connection_string(text, allow_password=sealing)
    for warning in parsed.warnings:
        sys.stderr.write(f"gwvault: warning: {warning}\n")
    ca_pem = ca_from_file(args.tls_ca) if args.tls_ca is not None else None
    source = parsed.data_source(tls=args.tls, ca_pem=ca_pem)
    validate_target(source)
    consent_to_cleartext(source, args.allow_cleartext)
    return StringTarget(parsed, source)


def sealed_token(parsed: ConnectionString) -> str:
    """The EncryptedCredential a string for ``credentials put`` must carry."""
    if parsed.sealed is None:
        raise InvalidInputError(
            "the connection string has no EncryptedCredential (the sealed login); " + SEAL_HINT
        )
    return parsed.sealed


def _read_string(name: str, *, private: bool) -> str:
    if name == "-":
        raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        if len(raw) > MAX_INPUT_BYTES:
            raise InvalidInputError(f"the connection string is longer than {MAX_INPUT_BYTES} bytes")
    elif private:
        raw = read_private_file(Path(name), "connection string")
    else:
        raw = read_public_file(Path(name), "connection string", MAX_CONNECTION_STRING_CHARS * 4)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("the connection string is not UTF-8 text") from None
    # A file or a pipe ends with a line ending that is not part of the string.
    return text.removesuffix("\n").removesuffix("\r")


def check_no_login_flags(args: argparse.Namespace) -> None:
    """``credentials put`` with a string: the sealed value in it carries the login."""
    if args.auth or args.username or args.secret_file or args.encrypted_credential is not None:
        raise InvalidInputError(
            "the connection string's EncryptedCredential carries auth, user name and secret;"
            " drop --auth, --username, --secret-file and --encrypted-credential"
        )


def string_payload(given: StringTarget, args: argparse.Namespace) -> CredentialPayload:
    """What encrypt-value seals for a string: its user and its password, or the
    secret from --secret-file, a pipe or a prompt when it holds none."""
    parsed = given.parsed
    if args.auth not in (None, "basic") or args.username is not None:
        raise InvalidInputError(
            "the connection string gives the login (a user name and password); drop --auth"
            " and --username"
        )
    if parsed.password is not None and args.secret_file is not None:
        raise InvalidInputError("the connection string holds the password; drop --secret-file")
    if parsed.username is None:
        raise InvalidInputError("the connection string names no user (User ID=..., USER@)")
    secret = parsed.password or read_secret("secret", args.secret_file)
    return CredentialPayload(auth="basic", username=parsed.username, secret=secret)
