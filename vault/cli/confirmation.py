"""Asking before a command destroys something: the question names the object.

Asked only of a person at a terminal: a script (stdin not a terminal) or
``--yes`` goes ahead, so automation keeps working and says so in its own
source.  Anything but "y" or "yes" cancels, changes nothing and exits 1.  The
question comes before the vault is opened, so no lock is held while a person
thinks.
"""

from __future__ import annotations

import argparse
import sys

from agent_keys.errors import VaultError


class NotConfirmed(VaultError):
    """The person at the terminal did not confirm; nothing changed."""


def add_yes_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes", "-y", action="store_true", help="do not ask (asked only at a terminal)"
    )


def will_ask(args: argparse.Namespace) -> bool:
    """Whether ``confirm_destruction`` asks (a person at a terminal, no ``--yes``)."""
    return not args.yes and sys.stdin.isatty()


def confirm_destruction(args: argparse.Namespace, question: str, consequence: str) -> None:
    """Return if the change may go ahead; ``NotConfirmed`` if the person said no."""
    if not will_ask(args):
        return
    print(consequence, file=sys.stderr)
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise NotConfirmed("not confirmed; nothing changed")
