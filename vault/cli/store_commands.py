"""``gwvault store migrate``: move this machine's vault into a shared PostgreSQL database."""

from __future__ import annotations

import argparse

from vault.cli.flags import Commands
from vault.cli.input import pin_source, read_secret
from vault.cli.opening import data_dir
from vault.cli.output import EXIT_OK


def add_parsers(commands: Commands) -> None:
    store = commands.add_parser("store", help="where the vault's database is")
    actions = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    migrate = actions.add_parser(
        "migrate",
        help="copy this vault into an empty PostgreSQL database, verify it there, and switch"
        " to it (run again after an interruption: it goes on)",
    )
    migrate.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="postgresql://USER@HOST[:PORT]/DB (no password; a remote host needs"
        " sslmode=verify-full&sslrootcert=CA.pem)",
    )
    migrate.add_argument(
        "--store-password-file",
        metavar="F",
        help="file (mode 0600) with the database password; else libpq's service or password file",
    )


def store_migrate(args: argparse.Namespace) -> int:
    from vault.context import RequestContext
    from vault.store.locator import parse_store_url
    from vault.store_migration import migrate_to_shared_store

    location = parse_store_url(args.to, "--to")
    password = (
        read_secret("store password", args.store_password_file)
        if args.store_password_file is not None
        else None
    )
    report = migrate_to_shared_store(
        data_dir(args),
        location,
        password,
        context=RequestContext.for_cli(),
        pin=pin_source(args.pin_file),
        progress=print,
    )
    print(f"this data dir now uses {report.target}")
    return EXIT_OK
