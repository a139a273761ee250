"""Who is acting, through which channel, and the clock and randomness they use.

Every service call carries a ``RequestContext``: the audit trail takes actor,
channel and request id from it, and tests hand in a fixed clock and RNG.
"""

from __future__ import annotations

import datetime
import getpass
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from agent_keys.randomness import RandomSource, system_random

Channel = Literal["cli", "web", "api", "agent"]
Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RequestContext:
    """The acting party and the sources of time and randomness for one request."""

    actor: str
    channel: Channel
    request_id: str = field(default_factory=new_request_id)
    clock: Clock = utc_now
    random: RandomSource = system_random

    @classmethod
    def for_cli(cls) -> RequestContext:
        """The local operating-system user running the ``gwvault`` command."""
        return cls(actor=f"os:{_os_user()}", channel="cli")

    def now_iso(self) -> str:
        return self.clock().astimezone(datetime.UTC).isoformat(timespec="seconds")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no USER variable
        return "unknown"
