"""``gwvault store migrate``: move this machine's vault into a shared PostgreSQL database."""

from __future__ import annotations

import argparse

from vault.cli.cluster_commands import add_store_password_flags, store_password
from vault.cli.flags import Commands
from vault.cli.input import pin_source
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
    add_store_password_flags(migrate)


def store_migrate(args: argparse.Namespace) -> int:
    from vault.context import RequestContext
    from vault.store.locator import parse_store_url
    from vault.store_migration import migrate_to_shared_store

    report = migrate_to_shared_store(
        data_dir(args),
        parse_store_url(args.to, "--to"),
        store_password(args),
        context=RequestContext.for_cli(),
        pin=pin_source(args.pin_file),
        progress=print,
    )
    print(f"this data dir now uses {report.target}")
    return EXIT_OK
