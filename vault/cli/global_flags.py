"""``--data-dir`` and ``--pin-file``: the flags every command takes, before the
command or after it (``gwvault --data-dir D status`` and ``gwvault status --data-dir D``).

argparse reads a flag only in the parser it was added to, so each is added to
the top parser and again to every command's own (leaf) parser, under another
name.  ``settle_global_flags`` then merges the two: either position works, and
giving a flag in both positions with different values is one usage error,
never a silent choice between two vaults.  The environment default
(``GWVAULT_DATA_DIR``) applies only when the flag is given nowhere.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from typing import Any

DEFAULT_DATA_DIR = "gwvault-data"
DATA_DIR_ENV = "GWVAULT_DATA_DIR"

# (flag, dest, help): the one list both positions are built from.
_GLOBAL_FLAGS = (
    (
        "--data-dir",
        "data_dir",
        f"the gateway's data directory (env {DATA_DIR_ENV}; default ./{DEFAULT_DATA_DIR});"
        " before or after the command",
    ),
    (
        "--pin-file",
        "pin_file",
        "file (mode 0600) with the PKCS#11 token's user PIN; else env GWVAULT_PKCS11_PIN,"
        " else a prompt",
    ),
)
_AFTER = "after_command_"


class _GivenOnce(argparse.Action):
    """Store the value; the same flag twice with different values is a usage error."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        previous = getattr(namespace, self.dest, None)
        if previous is not None and previous != values:
            parser.error(f"{option_string} is given twice, as {previous} and {values}")
        setattr(namespace, self.dest, values)


def add_global_flags(parser: argparse.ArgumentParser) -> None:
    """The flags in their first position, before the command (the top parser)."""
    for flag, dest, help_text in _GLOBAL_FLAGS:
        parser.add_argument(flag, dest=dest, metavar="PATH", action=_GivenOnce, help=help_text)


def repeat_after_commands(parser: argparse.ArgumentParser) -> None:
    """The same flags on every command's own parser (call once all commands exist)."""
    for command in _command_parsers(parser):
        for flag, dest, help_text in _GLOBAL_FLAGS:
            command.add_argument(
                flag,
                dest=_AFTER + dest,
                metavar="PATH",
                action=_GivenOnce,
                default=argparse.SUPPRESS,
                help=help_text,
            )


def settle_global_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Merge the two positions into ``args.data_dir`` and ``args.pin_file``.

    Exits 2 (``parser.error``) when a flag is given before and after the
    command with different values.
    """
    for flag, dest, _ in _GLOBAL_FLAGS:
        before = getattr(args, dest, None)
        after = getattr(args, _AFTER + dest, None)
        if hasattr(args, _AFTER + dest):
            delattr(args, _AFTER + dest)
        if before is not None and after is not None and before != after:
            parser.error(
                f"{flag} is given before and after the command, as {before} and {after};"
                " give it once"
            )
        setattr(args, dest, after if after is not None else before)
    if args.data_dir is None:
        args.data_dir = os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR


def _command_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that ends a command line (``status``, ``credentials put``), once each."""
    seen: set[int] = set()
    pending = [parser]
    while pending:
        current = pending.pop()
        children = [
            child
            for action in current._actions  # argparse has no public walk of subparsers
            if isinstance(action, argparse._SubParsersAction)
            for child in action.choices.values()
        ]
        if not children and current is not parser:
            yield current
        for child in children:
            if id(child) not in seen:
                seen.add(id(child))
                pending.append(child)
