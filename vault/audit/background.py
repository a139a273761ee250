"""What the server runs in the background for the audit trail: the periodic full
check, and ``flush``, which writes the counts of rate-limited anonymous events.

The page and the API check only the entries after the last full check's mark
(``vault.audit.incremental``); this job is what moves the mark between runs of
``gwvault audit verify``, so each page load stays short and an entry edited
before the mark is still found within one period.  The server schedules it
(and gives it a gateway of its own: it runs for seconds at a million entries).

In a cluster every member's server has the job, and one member does it: the
one holding the lease ``audit.full-check`` (``vault.cluster.lease``), taken for
a period and a margin and renewed by its holder each period.  While the holder
serves no other member takes it; when it stops, the lease runs out and the
next member whose period comes takes over.  The check itself is not fenced: a
holder that outlived its lease only checks once more, and any verdict it
records is a true one.
"""

from __future__ import annotations

from vault.audit.coalesce import COALESCER
from vault.audit.incremental import full_check_and_mark as _check_and_mark
from vault.audit.report import TrailReport
from vault.cluster.lease import acquire
from vault.gateway import Gateway

CHECKED_BY = "background"
FULL_CHECK_LEASE = "audit.full-check"


def full_check_and_mark(gateway: Gateway) -> TrailReport:
    """Check the whole trail and move the mark when it passes (never when it fails).

    Raises what opening the audit key raises (``IntegrityError`` when its row
    was altered, the keystore's error when it is unavailable).
    """
    return _check_and_mark(gateway, CHECKED_BY)


def leased_full_check(gateway: Gateway, period_ms: int) -> TrailReport:
    """``full_check_and_mark``, in a cluster only by the member holding the
    lease, which this takes or renews for ``period_ms`` and a minute, and
    never by a member that may not serve (removed, disabled, stale).

    Raises ``LeaseLostError`` (nothing checked) while another member holds
    it, ``MemberStoppedError`` for a member that may not serve.
    """
    gateway.check_standing()
    if gateway.member_id is not None:
        acquire(gateway.store, FULL_CHECK_LEASE, gateway.member_id, period_ms + _MARGIN_MS)
    return full_check_and_mark(gateway)


# The holder renews at its next period, before its lease runs out.
_MARGIN_MS = 60_000


def flush(gateway: Gateway, *, final: bool = False) -> int:
    """Write the counts of anonymous events whose window has closed (all of them
    when ``final``, at shutdown) as one entry per window; returns how many.

    The server calls this periodically and when it stops (vault.audit.coalesce).
    """
    taken = COALESCER.take(gateway.gateway_id, gateway.context.clock(), everything=final)
    gateway.audit.write_coalesced(taken)
    return len(taken)
