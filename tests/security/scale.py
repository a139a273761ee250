"""How hard the security tests push: bounded in ``make test``, long in ``make security``.

``make security`` sets ``GWVAULT_SECURITY_LONG=1``; each long-running test
(fuzzing, crash loops, concurrency, scans) asks ``scaled(short, long)`` for its
number of runs, examples or seconds, so the same code backs both.
"""

from __future__ import annotations

import os

LONG = os.environ.get("GWVAULT_SECURITY_LONG") == "1"


def scaled(short: int, long: int) -> int:
    """``long`` under ``make security``, else ``short``."""
    return long if LONG else short
