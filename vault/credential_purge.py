"""The scheduled purge: deleted credentials whose retention window has passed
are destroyed (row and wrapped data key: crypto-shred) by the server, not by a
person (``CredentialService.purge_expired``).

The housekeeper runs it every period (``web.housekeeping``).  In a cluster one
member does it, the one holding the lease ``credentials.purge``
(``vault.cluster.lease``), and each credential's purge is fenced by the lease's
token inside the write that purges it: a holder that paused past its lease
while another member took over has its step refused, so two members never
purge side by side.  A member that may not serve (removed, disabled, stale)
purges nothing.
"""

from __future__ import annotations

from vault.cluster.lease import acquire, fenced
from vault.credentials import CredentialService
from vault.gateway import Gateway

PURGE_LEASE = "credentials.purge"

# The holder renews at its next period, before its lease runs out.
_MARGIN_MS = 60_000


def purge_expired_credentials(gateway: Gateway, period_ms: int = 3_600_000) -> tuple[str, ...]:
    """Purge every deleted credential past its ``purge_after``; their names.

    In a cluster only by the lease holder, which this takes or renews for
    ``period_ms`` and a minute: ``LeaseLostError`` (nothing purged) while
    another member holds it, ``MemberStoppedError`` for a member that may not
    serve.
    """
    gateway.check_standing()
    service = CredentialService(gateway)
    if gateway.member_id is None:
        return service.purge_expired()
    store = gateway.store
    lease = acquire(store, PURGE_LEASE, gateway.member_id, period_ms + _MARGIN_MS)
    return service.purge_expired(step=lambda: fenced(store, lease, period_ms + _MARGIN_MS))
