"""``gwvault keys ...``: rotating the gateway master key."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vault.cli_parser import _Commands


def add_parsers(commands: _Commands) -> None:
    """No commands yet."""
