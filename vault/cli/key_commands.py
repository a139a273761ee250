"""``gwvault keys ...``: rotating the gateway master key."""

from __future__ import annotations

import argparse
import sys

from vault.cli.flags import Commands
from vault.cli.input import read_secret
from vault.cli.opening import open_for_cli
from vault.cli.output import EXIT_INTERRUPTED, EXIT_OK, report_failure
from vault.keys.rotation import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    KeyRotation,
    ProgressReport,
    RotationResult,
)


def add_parsers(commands: Commands) -> None:
    keys = commands.add_parser("keys", help="the gateway master key")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    rotate = actions.add_parser(
        "rotate",
        help="a new master key version: rewraps every data key (secrets are not re-encrypted);"
        " run it again to resume an interrupted rotation",
    )
    rotate.add_argument(
        "--recovery-key-file",
        metavar="F",
        help="file (mode 0600) with the recovery key (the new key is wrapped by it too);"
        " else prompted, or read from a pipe",
    )
    rotate.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"data keys rewrapped per transaction (default {DEFAULT_BATCH_SIZE})",
    )


def keys_rotate(args: argparse.Namespace) -> int:
    recovery_key = read_secret("recovery key", args.recovery_key_file)
    progress = _TerminalProgress() if sys.stderr.isatty() else None
    with open_for_cli(args) as gateway:
        try:
            result = KeyRotation(gateway).rotate(recovery_key, args.batch_size, progress)
        except KeyboardInterrupt:
            # cli.main would say "nothing was changed"; here committed batches stay.
            _end_progress(progress)
            sys.stderr.write(
                "gwvault: error: interrupted; every credential still opens, run gwvault keys"
                " rotate again to finish the rotation\n"
            )
            return EXIT_INTERRUPTED
        finally:
            _end_progress(progress)
    _print_result(result)
    if not result.complete:
        kept = "; ".join(
            f"version {v} is used by {users}" for v, users in result.kept_versions.items()
        )
        return report_failure(f"the old master key was kept: {kept}")
    return EXIT_OK


def _print_result(result: RotationResult) -> None:
    verb = "resumed and finished" if result.resumed else "finished"
    print(
        f"{verb} the rotation to master key version {result.to_version}:"
        f" {result.rewrapped} data keys rewrapped now,"
        f" {result.credentials} credentials on version {result.to_version}"
    )
    if result.destroyed_versions:
        versions = ", ".join(map(str, result.destroyed_versions))
        print(f"destroyed master key version {versions}")


def _batch_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from e
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_BATCH_SIZE}")
    return size


class _TerminalProgress:
    """``\\r rewrapped 3000/10000`` on a terminal's stderr (never into a pipe or log)."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        sys.stderr.write(f"\r rewrapped {done}/{total}")
        sys.stderr.flush()
        self.shown = True


def _end_progress(progress: ProgressReport | None) -> None:
    if isinstance(progress, _TerminalProgress) and progress.shown:
        sys.stderr.write("\n")
        progress.shown = False
