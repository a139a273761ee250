"""``gwvault test-policy ...``: where connection tests may go.

Tests by callers who are not admins (web creators, API tokens, entry links)
never reach loopback, link-local or cloud metadata addresses unless an admin
allows a network here; SQLite tests (anyone's) look only under the directories
listed here.  The lists live in ``vault.access.destination_policy``.
"""

from __future__ import annotations

import argparse
import os

from vault.cli.flags import Commands
from vault.cli.opening import open_for_cli
from vault.cli.output import EXIT_OK, print_json


def add_parsers(commands: Commands) -> None:
    policy = commands.add_parser(
        "test-policy", help="where connection tests may go (networks, SQLite directories)"
    )
    actions = policy.add_subparsers(dest="test_policy_command", required=True, metavar="ACTION")
    actions.add_parser("show", help="show both lists").add_argument("--json", action="store_true")
    for verb, what in (("allow", "let tests by non-admins reach"), ("remove", "stop allowing")):
        network = actions.add_parser(
            f"{verb}-network", help=f"{what} a network refused by default (loopback, metadata)"
        )
        network.add_argument("network", metavar="CIDR", help="e.g. 127.0.0.1/32 or fd00::/8")
        network.add_argument("--port", type=int, help="only this port (default: any)")
    allow_dir = actions.add_parser(
        "allow-sqlite-dir", help="let SQLite tests open files under a directory"
    )
    allow_dir.add_argument("directory", metavar="DIR")
    remove_dir = actions.add_parser("remove-sqlite-dir", help="stop allowing a directory")
    remove_dir.add_argument("directory", metavar="DIR")


def test_policy_show(args: argparse.Namespace) -> int:
    from vault.access.destination_policy import load_test_destinations

    with open_for_cli(args) as gateway:
        lists = load_test_destinations(gateway).to_dict()
    if args.json:
        print_json(lists)
        return EXIT_OK
    for title, key in (("allowed networks", "allowed_networks"), ("SQLite dirs", "sqlite_dirs")):
        print(f"{title}: {', '.join(lists[key]) or '(none)'}")
    return EXIT_OK


def test_policy_allow_network(args: argparse.Namespace) -> int:
    from vault.access.destination_policy import allow_network
    from vault.connectors.destinations import AllowedNetwork

    entry = AllowedNetwork.parse(args.network, args.port)
    with open_for_cli(args) as gateway:
        allow_network(gateway, entry)
    print(f"tests by callers who are not admins may now reach {entry}")
    return EXIT_OK


def test_policy_remove_network(args: argparse.Namespace) -> int:
    from vault.access.destination_policy import remove_network
    from vault.connectors.destinations import AllowedNetwork

    entry = AllowedNetwork.parse(args.network, args.port)
    with open_for_cli(args) as gateway:
        remove_network(gateway, entry)
    print(f"removed {entry}")
    return EXIT_OK


def test_policy_allow_sqlite_dir(args: argparse.Namespace) -> int:
    from vault.access.destination_policy import allow_sqlite_dir

    with open_for_cli(args) as gateway:
        allow_sqlite_dir(gateway, args.directory)
    print(f"SQLite tests may now open files under {os.path.realpath(args.directory)}")
    return EXIT_OK


def test_policy_remove_sqlite_dir(args: argparse.Namespace) -> int:
    from vault.access.destination_policy import remove_sqlite_dir

    with open_for_cli(args) as gateway:
        remove_sqlite_dir(gateway, args.directory)
    print(f"removed {args.directory}")
    return EXIT_OK
