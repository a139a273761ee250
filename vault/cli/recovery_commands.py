"""``gwvault recovery export|verify|change-key`` and ``gwvault restore``: moving a gateway."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent_keys.errors import InvalidInputError
from agent_keys.recovery_key import check_passphrase_policy
from vault.cli.flags import Commands, add_keystore_flags
from vault.cli.input import pin_source, read_public_file, read_secret, write_private_output
from vault.cli.opening import data_dir, keystore_spec, open_for_cli
from vault.cli.output import EXIT_OK, report_failure
from vault.context import RequestContext
from vault.format.recovery_bundle import MAX_BUNDLE_BYTES
from vault.keys.recovery import RecoveryService
from vault.keys.relocation import export_bundle, restore_vault

_KEY_FILE_HELP = "file (mode 0600) with the recovery key; else prompted, or read from a pipe"


def add_parsers(commands: Commands) -> None:
    recovery = commands.add_parser("recovery", help="the recovery key and recovery bundles")
    actions = recovery.add_subparsers(dest="recovery_command", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write a bundle that moves this gateway")
    export.add_argument("--out", required=True, metavar="FILE")
    export.add_argument("--recovery-key-file", metavar="F", help=_KEY_FILE_HELP)
    verify = actions.add_parser(
        "verify", help="prove a recovery key opens this vault; changes nothing"
    )
    verify.add_argument("--recovery-key-file", metavar="F", help=_KEY_FILE_HELP)
    change = actions.add_parser("change-key", help="replace the recovery key (the GMK stays)")
    change.add_argument(
        "--recovery-key-file", metavar="F", help="the current key; " + _KEY_FILE_HELP
    )
    change.add_argument("--new-recovery-key-file", metavar="F", help="the new key, mode 0600")

    restoring = commands.add_parser(
        "restore", help="restore a recovery bundle into an empty --data-dir on this machine"
    )
    restoring.add_argument("--bundle", required=True, metavar="FILE")
    restoring.add_argument("--recovery-key-file", metavar="F", help=_KEY_FILE_HELP)
    add_keystore_flags(restoring, "--keystore", default="file")


def recovery_export(args: argparse.Namespace) -> int:
    recovery_key = read_secret("recovery key", args.recovery_key_file)
    out = Path(args.out)
    with open_for_cli(args) as gateway:
        bundle = export_bundle(gateway, recovery_key)
    write_private_output(out, bundle)
    print(f"wrote recovery bundle {out} ({len(bundle)} bytes); it opens with the recovery key only")
    return EXIT_OK


def recovery_verify(args: argparse.Namespace) -> int:
    recovery_key = read_secret("recovery key", args.recovery_key_file)
    with open_for_cli(args) as gateway:
        versions = RecoveryService(gateway).verify(recovery_key)
    print(f"the recovery key opens this vault ({versions} master key version(s)); nothing changed")
    return EXIT_OK


def recovery_change_key(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty() and not (args.recovery_key_file and args.new_recovery_key_file):
        raise InvalidInputError(
            "off a terminal, give both --recovery-key-file and --new-recovery-key-file"
        )
    old = read_secret("current recovery key", args.recovery_key_file)
    new = read_secret(
        "new recovery key",
        args.new_recovery_key_file,
        confirm=True,
        check=lambda key: check_passphrase_policy(key, "new recovery key"),
    )
    with open_for_cli(args) as gateway:
        RecoveryService(gateway).change_key(old, new)
    print("changed the recovery key; bundles exported before this still open with the OLD key")
    return EXIT_OK


def restore(args: argparse.Namespace) -> int:
    bundle = read_public_file(Path(args.bundle), "recovery bundle", MAX_BUNDLE_BYTES)
    recovery_key = read_secret("recovery key", args.recovery_key_file)
    gateway, report = restore_vault(
        data_dir(args),
        bundle,
        recovery_key,
        RequestContext.for_cli(),
        keystore=keystore_spec(args),
        pin=pin_source(args.pin_file),
    )
    with gateway:
        status = gateway.status()
    print(f"restored gateway {status['name']} ({status['gateway_id']}), epoch {status['epoch']}")
    total = len(report.opened) + len(report.failed)
    print(f"{len(report.opened)} of {total} credentials open")
    if report.failed:
        return report_failure(f"these credentials do not open: {', '.join(report.failed)}")
    return EXIT_OK
