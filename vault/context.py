"""Who is acting, through which channel, and the clock and randomness they use.

Every service call carries a ``RequestContext``: the audit trail takes actor,
channel and request id from it, and tests hand in a fixed clock and RNG.
"""

from __future__ import annotations

import datetime
import os
import pwd
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
    claimed_sudo_user: str | None = None
    """Who sudo says ran the command (``SUDO_USER``): recorded beside the actor,
    as a claim, since whoever runs gwvault can set that variable too."""
    client: str | None = None
    """The network address a request came from (None: the CLI, local), by which
    anonymous events' audit entries are rate-limited (vault.audit.coalesce)."""

    @classmethod
    def for_cli(cls) -> RequestContext:
        """The operating-system user the ``gwvault`` command runs as.

        The actor is the effective uid's name from the user database, never
        ``$LOGNAME``/``$USER``, which the caller chooses (T-AU-14).  Under sudo
        the invoking user is kept as ``claimed_sudo_user``.
        """
        return cls(actor=f"os:{_effective_user()}", channel="cli", claimed_sudo_user=_sudo_user())

    def now_iso(self) -> str:
        return self.clock().astimezone(datetime.UTC).isoformat(timespec="seconds")


_CLAIM_CHARS = 64


def _effective_user() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no user database entry (containers): the number is the identity
        return f"uid={uid}"


def _sudo_user() -> str | None:
    claimed = os.environ.get("SUDO_USER")
    if not claimed:
        return None
    # It lands in audit listings people read: no control characters, bounded.
    if len(claimed) > _CLAIM_CHARS or not claimed.isprintable():
        return "(not a user name)"
    return claimed
