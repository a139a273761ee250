"""Whether this server should be sent requests now: what ``/readyz`` answers.

A load balancer in front of a cluster's members sends requests only to
members that say they are ready; a single machine's service manager may ask
the same.  Ready means a request could be served in full right now:

- the store is reachable (the vault opens, or its kept connection answers);
- its schema is the one this gwvault reads (another member may have upgraded
  it while this one kept serving);
- this cluster member is in the cluster, enabled and of the current epoch
  (``Gateway.check_standing``);
- the vault is unlocked: the current GMK is in hand (after a rotation by
  another member, through this member's own wrap);
- the store takes writes: not a standby, not a read-only session or file.

The probe is unauthenticated, so it learns ready or not and nothing else: the
reason is logged here, on the server, once each time it changes (a probe every
few seconds must not fill the log with the same line).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent_keys.errors import VaultError
from vault.gateway import Gateway
from vault.store.schema import SCHEMA_VERSION

log = logging.getLogger("gwvault.server")


def is_ready(open_gateway: Callable[[], Gateway]) -> bool:
    """Whether the vault ``open_gateway`` gives (opening it is the first check)
    is ready to serve; never raises, logs why not."""
    try:
        reason = unready_reason(open_gateway())
    except VaultError as e:
        reason = str(e)  # written for people, never holding a secret
    except Exception as e:  # a probe answers ready or not, never an error page
        reason = f"unexpected {type(e).__name__}"  # type only: its text is unreviewed
    _VERDICTS.report(reason)
    return reason is None


def unready_reason(gateway: Gateway) -> str | None:
    """Why ``gateway`` may not serve now, or None; raises what a failed check
    raises (``StorageError``, ``MemberStoppedError``, ``KeyBackendError``...)."""
    store = gateway.store
    version = store.setting("schema_version")
    if version != str(SCHEMA_VERSION):
        return f"{store.location} has schema {version}; this gwvault reads {SCHEMA_VERSION}"
    gateway.check_standing()
    gateway.master_key  # noqa: B018 - unwraps it if another member rotated it
    return store.engine.write_refusal()


class _Verdicts:
    """The last reason logged by this process (None: ready), so that only a
    change is logged.  One assignment replaces it: threads need no lock, and
    two threads logging the same change at once is harmless."""

    def __init__(self) -> None:
        self._last: str | None = None

    def report(self, reason: str | None) -> None:
        if reason == self._last:
            return
        self._last = reason
        if reason is None:
            log.info("ready: serving requests again")
        else:
            log.warning("not ready: %s", reason)


_VERDICTS = _Verdicts()
