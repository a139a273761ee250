"""The flags of the owner's dates: ``credentials put --expires/--rotate-every/--contact``,
``credentials set`` and ``credentials due`` (their handlers: ``vault.cli.life_commands``).

Parsers only, so ``gwvault --help`` loads no service code.
"""

from __future__ import annotations

import argparse

from vault.cli.flags import Commands
from vault.format.life_input import DEFAULT_WITHIN


def add_life_flags(parser: argparse.ArgumentParser) -> None:
    """``--expires``, ``--rotate-every``, ``--contact``: each kept when left out."""
    parser.add_argument(
        "--expires",
        metavar="DATE|none",
        help="when the secret stops working: 2027-03-31 (the start of that day, UTC) or"
        " 2027-03-31T18:00:00+02:00; warnings come 30, 7 and 1 days before",
    )
    parser.add_argument(
        "--rotate-every",
        metavar="DURATION|none",
        help="how often the secret is to change, counted from each put: 90d, 12w, 36h"
        " (1 day to 10 years)",
    )
    parser.add_argument(
        "--contact", metavar="EMAIL|none", help="whom to tell when it is due: one e-mail address"
    )


def add_parsers(actions: Commands) -> None:
    set_ = actions.add_parser(
        "set", help="change a credential's expiry, rotation period or contact (not its secret)"
    )
    set_.add_argument("name", metavar="NAME")
    add_life_flags(set_)
    due = actions.add_parser(
        "due", help="credentials whose expiry or rotation is due within a window, or overdue"
    )
    due.add_argument(
        "--within",
        default=DEFAULT_WITHIN,
        metavar="DURATION",
        help=f"how far ahead to look: 0d (overdue only) to 3650d; default {DEFAULT_WITHIN}",
    )
    due.add_argument("--json", action="store_true")
