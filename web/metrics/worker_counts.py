"""Where forked workers keep their request counts: one private directory per serve.

Each worker counts its own requests; a scrape lands on one worker, which must
report them all.  prometheus-client's multiprocess mode keeps each process's
values in memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` and sums them
at scrape time, so no worker talks to another.  The parent makes the
directory (0700, fresh: a count left by an earlier run would be added to
this one's), points the client at it before the workers fork, and removes it
when serving ends.  A dead worker's counters stay (a counter must not go
backwards when a worker is replaced); ``mark_process_dead`` drops what only
a live process may report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import multiprocess, values

ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_worker_counts() -> Iterator[Path]:
    """A fresh private directory the request metrics made after this point count
    in, across forks; removed, and the client as it was, on exit."""
    path = Path(tempfile.mkdtemp(prefix="gwvault-metrics-"))  # 0700, a name nobody guessed
    previous = os.environ.get(ENV)
    os.environ[ENV] = str(path)
    # The client picks its value class when first imported; the metrics made
    # after this (create_app) must write to the directory, so pick again.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        shutil.rmtree(path, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """Forget what only a live ``pid`` reported (its counters stay)."""
    path = os.environ.get(ENV)
    if path:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def counts_directory() -> Path | None:
    """The directory of the workers' counts (None: this process counts alone)."""
    path = os.environ.get(ENV)
    return Path(path) if path else None
