"""The owner's dates on the command line, for ``credentials put``, ``set`` and ``due``.

The values are parsed by ``vault.format.life_input`` (``none`` clears one);
a flag left out keeps the stored value.
"""

from __future__ import annotations

import argparse
from typing import Any

from agent_keys.errors import InvalidInputError
from vault.credential_life import KEEP, LifeChange, life_change_of
from vault.format.life_input import describe_period

# Each flag's dest -> the LifeChange field it sets.
LIFE_FLAGS = {"expires": "expires_at", "rotate_every": "rotate_every", "contact": "contact"}


def life_change_from_flags(args: argparse.Namespace, *, required: bool = False) -> LifeChange:
    """The change the flags ask for; ``required``: at least one flag (``set``)."""
    given = {flag: getattr(args, flag) for flag in LIFE_FLAGS if getattr(args, flag) is not None}
    if required and not given:
        raise InvalidInputError("give --expires, --rotate-every or --contact (none clears one)")
    return life_change_of(**{field: given.get(flag, KEEP) for flag, field in LIFE_FLAGS.items()})


def due_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The lines of ``credentials due``, in columns: name, what, when, days, contact."""
    width = max(len(row["name"]) for row in rows)
    lines = []
    for row in rows:
        days = row["days_left"]
        when = f"overdue by {_days(-days)}" if row["overdue"] else f"in {_days(days)}"
        contact = f"  {row['contact']}" if row["contact"] else ""
        line = f"{row['name']:<{width}}  {row['what']:<13}  {row['at']}  {when}{contact}"
        lines.append(line)
    return lines


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def life_lines(life: dict[str, Any]) -> str:
    """What ``credentials set`` says it stored."""
    rotation = life["rotate_every"]
    return (
        f"expires {life['expires_at'] or 'never'},"
        f" rotate every {describe_period(rotation) if rotation else '(no period)'},"
        f" contact {life['contact'] or '(none)'}"
    )
