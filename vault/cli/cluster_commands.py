"""``gwvault cluster join|members|disable|enable|remove|status``: a gateway cluster's members."""

from __future__ import annotations

import argparse
import os

from agent_keys.secret import Secret
from vault.cli.confirmation import add_yes_flag, confirm_destruction
from vault.cli.flags import Commands, add_keystore_flags
from vault.cli.input import pin_source, read_secret
from vault.cli.opening import data_dir, keystore_spec, open_for_cli
from vault.cli.output import EXIT_OK, print_fields, print_json
from vault.context import RequestContext
from vault.store.locator import STORE_ENV, PostgresLocation, parse_store_url

_KEY_FILE_HELP = "file (mode 0600) with the recovery key; else prompted, or read from a pipe"


def add_store_flags(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--store URL`` (a PostgreSQL URL with no password in it) and where its password is."""
    parser.add_argument(
        "--store",
        metavar="URL",
        default=os.environ.get(STORE_ENV) or None,
        required=required and not os.environ.get(STORE_ENV),
        help="the cluster's shared PostgreSQL database, postgresql://USER@HOST:PORT/DB"
        f"?sslmode=verify-full&sslrootcert=CA.pem (env {STORE_ENV}); never with a password",
    )
    add_store_password_flags(parser)


def add_store_password_flags(parser: argparse.ArgumentParser) -> None:
    """Where the store's password comes from (``store_password``), never a flag's value."""
    password = parser.add_mutually_exclusive_group()
    password.add_argument(
        "--store-password-file",
        metavar="F",
        help="file (mode 0600) with the database password, copied to the data dir's libpq"
        " password file; else a libpq service or passfile= in the URL",
    )
    password.add_argument(
        "--ask-store-password",
        action="store_true",
        help="prompt for the database password (or read it from a pipe) instead",
    )


def store_location(args: argparse.Namespace) -> tuple[PostgresLocation, Secret | None]:
    """The ``--store`` location and the password from ``--store-password-file``."""
    return parse_store_url(args.store), store_password(args)


def store_password(args: argparse.Namespace) -> Secret | None:
    """The password ``add_store_password_flags`` asked for, if any (a file, a prompt, a pipe)."""
    asked = args.store_password_file is not None or args.ask_store_password
    return read_secret("store password", args.store_password_file) if asked else None


def add_parsers(commands: Commands) -> None:
    cluster = commands.add_parser("cluster", help="members of a gateway cluster (shared store)")
    actions = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    join = actions.add_parser("join", help="make --data-dir a new member of a cluster")
    add_store_flags(join, required=True)
    join.add_argument("--recovery-key-file", metavar="F", help=_KEY_FILE_HELP)
    join.add_argument("--name", help="this member's name (default: the host name)")
    add_keystore_flags(join, "--keystore", default="file")
    members = actions.add_parser("members", help="list the members")
    members.add_argument("--json", action="store_true", help="machine-readable output")
    for verb, what in (
        ("disable", "stop a member serving (its keys stay)"),
        ("enable", "let a disabled member serve again"),
    ):
        action = actions.add_parser(verb, help=what)
        action.add_argument("node", metavar="NODE", help="the member's name or id")
    remove = actions.add_parser("remove", help="remove a member and delete its key wraps")
    remove.add_argument("node", metavar="NODE", help="the member's name or id")
    remove.add_argument(
        "--rotate",
        action="store_true",
        help="also rotate the master key, so a copy of the member's keys is worthless",
    )
    remove.add_argument("--recovery-key-file", metavar="F", help="with --rotate; " + _KEY_FILE_HELP)
    add_yes_flag(remove)
    status = actions.add_parser("status", help="members, lease holders, the database's role")
    status.add_argument("--json", action="store_true", help="machine-readable output")


def cluster_join(args: argparse.Namespace) -> int:
    from vault.cluster.members import join_cluster

    location, password = store_location(args)
    recovery_key = read_secret("recovery key", args.recovery_key_file)
    with join_cluster(
        data_dir(args),
        location,
        recovery_key,
        RequestContext.for_cli(),
        name=args.name,
        keystore=keystore_spec(args),
        pin=pin_source(args.pin_file),
        store_password=password,
    ) as gateway:
        facts = gateway.status()
    print(
        f"joined gateway {facts['name']} ({facts['gateway_id']}) as member {facts['member_id']}"
        f" with store {facts['store_location']}"
    )
    return EXIT_OK


def cluster_members(args: argparse.Namespace) -> int:
    from vault.cluster.members import ClusterMembers

    with open_for_cli(args) as gateway:
        listed = ClusterMembers(gateway).list()
    if args.json:
        print_json(listed)
    else:
        for member in listed:
            mark = "*" if member["this_member"] else " "
            print(
                f"{mark} {member['name']:<20} {member['id']}  {member['state']:<8}"
                f" v{member['software_version']}  {member['keystore_kind']:<6}"
                f" last seen {member['last_seen_s_ago']} s ago"
            )
    return EXIT_OK


def cluster_disable(args: argparse.Namespace) -> int:
    return _set_state(args, "disabled")


def cluster_enable(args: argparse.Namespace) -> int:
    return _set_state(args, "enabled")


def _set_state(args: argparse.Namespace, state: str) -> int:
    from vault.cluster.members import ClusterMembers

    with open_for_cli(args) as gateway:
        record = ClusterMembers(gateway).set_state(args.node, state)
    print(f"member {record.name} ({record.id}) is {record.state}")
    return EXIT_OK


def cluster_remove(args: argparse.Namespace) -> int:
    from vault.cluster.members import ClusterMembers
    from vault.keys.rotation import KeyRotation

    confirm_destruction(
        args,
        f"Remove the member {args.node}?",
        f"{args.node} stops serving at once and its wraps of the master key are deleted.",
    )
    recovery_key = read_secret("recovery key", args.recovery_key_file) if args.rotate else None
    with open_for_cli(args) as gateway:
        if recovery_key is not None:
            gateway.master_key_from_recovery_key(recovery_key)  # a wrong key changes nothing
        record = ClusterMembers(gateway).remove(args.node)
        print(f"removed member {record.name} ({record.id}); its key wraps are deleted")
        if recovery_key is not None:
            result = KeyRotation(gateway).rotate(recovery_key)
            print(
                f"rotated the master key to version {result.to_version}: what {record.name}"
                " may have kept opens nothing written from now on"
            )
    return EXIT_OK


def cluster_status(args: argparse.Namespace) -> int:
    from vault.cluster.status import cluster_status as status_of

    with open_for_cli(args) as gateway:
        facts = status_of(gateway)
    if args.json:
        print_json(facts)
    else:
        print_fields({k: v for k, v in facts.items() if not isinstance(v, list | dict)})
        for member in facts["members"]:
            seen = member["last_seen_s_ago"]
            print(f"  member {member['name']} {member['state']} last seen {seen} s ago")
        for lease in facts["leases"]:
            print(f"  lease {lease['name']} held by {lease['holder']} (token {lease['token']})")
    return EXIT_OK
