"""One write in which an admin's right is decided and acted on.

The caller (None: the CLI's operator, who holds the data dir) is authorized
inside the write that makes the change, so the decision and the change see
the same rows.  A refusal rolls the write back, so it is recorded after, on
its own: ``access.refused`` for a caller without the right, the row's
``integrity.row-refused`` for a row written outside gwvault.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from agent_keys.errors import AccessDeniedError
from vault.access.callers import Caller
from vault.access.policy import Action
from vault.access.row_seal import TamperedRowError, record_refusal
from vault.gateway import Gateway


@contextmanager
def admin_write(
    gateway: Gateway, caller: Caller | None, action: Action, target: str | None
) -> Iterator[None]:
    try:
        with gateway.store.write():
            if caller is not None:
                caller.authorize(gateway, action)
            yield
    except AccessDeniedError as e:
        gateway.audit.record(
            "access.refused", target, "refused", refused_action=action, reason=str(e)[:200]
        )
        raise
    except TamperedRowError as e:
        record_refusal(gateway.audit, e)
        raise
