"""What a long-lived object does in a child the server forks: one hook per object.

The server forks its worker processes.  An object that holds a lock or a
connection must reset them in the child before any of the child's threads runs:
a lock a parent thread held at the fork is never released there, and a
connection is the parent's to use.  The hook holds the object weakly, so
registering it keeps nothing alive (``os.register_at_fork`` cannot unregister).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


def reset_in_child(owner: _T, reset: Callable[[_T], None]) -> None:
    """Call ``reset(owner)`` in every child forked while ``owner`` is alive."""
    ref = weakref.ref(owner)

    def after_fork() -> None:
        alive = ref()
        if alive is not None:
            reset(alive)

    os.register_at_fork(after_in_child=after_fork)
