"""What one attempt to hand an event to a sink came to.

``Delivered``: the sink took it.  ``Retry``: it may take it later (a network
error, a 5xx or 429 answer, a TLS failure, an SMTP 4xx), after ``after``
seconds if the far end said so.  ``Refused``: it never will as configured (a
4xx answer, a redirect, an SMTP 5xx): the delivery gives up at once.  The
reason is gwvault's own sentence with at most a status code in it, never the
far end's words (they go nowhere: an attacker's server could put anything there).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Delivered:
    reason: str = "delivered"


@dataclass(frozen=True)
class Retry:
    reason: str
    after: float | None = None


@dataclass(frozen=True)
class Refused:
    reason: str


Outcome = Delivered | Retry | Refused
