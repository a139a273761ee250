"""The one error of an audit sink that could not take what it was sent."""

from __future__ import annotations

from agent_keys.errors import StorageError


class AuditSinkUnavailableError(StorageError):
    """A sink did not take the entries it was sent (refused, unreachable, timed
    out, closed mid-way).  Under a ``block`` sink this fails the change that
    wrote them: the transaction rolls back and nothing is changed.  The message
    names the sink and the cause, never a record's contents."""
