"""The server's periodic full check of the audit trail.

The page and the API check only the entries after the last full check's mark
(``vault.audit.incremental``); this job is what moves the mark between runs of
``gwvault audit verify``, so each page load stays short and an entry edited
before the mark is still found within one period.  The server schedules it
(and gives it a gateway of its own: it runs for seconds at a million entries).
"""

from __future__ import annotations

from vault.audit.incremental import full_check_and_mark as _check_and_mark
from vault.audit.report import TrailReport
from vault.gateway import Gateway

CHECKED_BY = "background"


def full_check_and_mark(gateway: Gateway) -> TrailReport:
    """Check the whole trail and move the mark when it passes (never when it fails).

    Raises what opening the audit key raises (``IntegrityError`` when its row
    was altered, the keystore's error when it is unavailable).
    """
    return _check_and_mark(gateway, CHECKED_BY)
