"""Calls made for a fixed window by several threads, and by several processes at once.

A burst is ``threads`` threads calling one ``Call`` for ``seconds``; a call
that raises is an error of the figure, not a call made.  ``bursts_at_once``
runs one burst in each of several fresh processes (a cluster's members, each
on its own data dir), released together once every process has opened its
vault and warmed up, so that start-up is never inside the window.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from threading import BrokenBarrierError

Call = Callable[[int], object]
"""One operation; its argument is a number unique within the burst (for names, job ids)."""
Work = Callable[[Path, str], AbstractContextManager[Call]]
"""Opens ``data_dir`` and yields its ``Call``, warmed up; names it makes start with the tag.
A top-level function, so a spawned process can be handed it."""

READY_SECONDS = 120  # spawn, imports, opening the vault, the warmup
EXIT_SECONDS = 60


@dataclass(frozen=True)
class Burst:
    calls: int  # calls that returned
    errors: int  # calls that raised
    seconds: float
    cpu_seconds: float  # the CPU time of the burst's process meanwhile, all its threads

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


def threaded_burst(call: Call, threads: int, seconds: float) -> Burst:
    """``threads`` threads calling ``call`` for ``seconds``."""
    counts = [0] * threads
    errors = [0] * threads
    cpu_before = time.process_time()
    start = time.monotonic()
    until = start + seconds

    def job(slot: int) -> None:
        n = slot
        while time.monotonic() < until:
            try:
                call(n)
                counts[slot] += 1
            except Exception:  # any failure is an error of the figure, not a call made
                errors[slot] += 1
            n += threads

    workers = [threading.Thread(target=job, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    return Burst(sum(counts), sum(errors), elapsed, time.process_time() - cpu_before)


def bursts_at_once(
    work: Work, members: Sequence[tuple[Path, int]], seconds: float, tag: str
) -> list[Burst]:
    """One process per ``(data_dir, threads)`` in ``members``, each making a burst of
    ``work`` on its data dir; all bursts start together.  Raises ``RuntimeError``
    with a process's traceback if one fails."""
    context = multiprocessing.get_context("spawn")  # no fork of this process's state
    ready = context.Barrier(len(members) + 1)
    results: Queue[tuple[str, Burst | str]] = context.Queue()
    processes = [
        context.Process(
            target=_member_burst,
            args=(_Order(work, data_dir, threads, seconds, f"{tag}-{i}"), ready, results),
        )
        for i, (data_dir, threads) in enumerate(members)
    ]
    for process in processes:
        process.start()
    try:
        try:
            ready.wait(READY_SECONDS)
        except BrokenBarrierError:
            raise RuntimeError(_failures(results, len(members))) from None
        bursts = [_burst_of(results.get(timeout=seconds + EXIT_SECONDS)) for _ in members]
    finally:
        for process in processes:
            process.join(EXIT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
    return bursts


@dataclass(frozen=True)
class _Order:
    """What one member's process is to do (pickled to it)."""

    work: Work
    data_dir: Path
    threads: int
    seconds: float
    tag: str


def _member_burst(order: _Order, ready: Barrier, results: Queue[tuple[str, Burst | str]]) -> None:
    try:
        with order.work(order.data_dir, order.tag) as call:
            ready.wait(READY_SECONDS)
            burst = threaded_burst(call, order.threads, order.seconds)
        results.put(("ok", burst))
    except BaseException:
        ready.abort()  # the parent stops waiting for this process
        results.put(("failed", f"{order.data_dir}: {traceback.format_exc()}"))


def _burst_of(result: tuple[str, Burst | str]) -> Burst:
    outcome, value = result
    if not isinstance(value, Burst):
        raise RuntimeError(f"a member's burst {outcome}: {value}")
    return value


def _failures(results: Queue[tuple[str, Burst | str]], most: int) -> str:
    found = []
    for _ in range(most):
        try:
            outcome, value = results.get(timeout=5)
        except Exception:  # queue.Empty: a process died without a word
            break
        if outcome != "ok":
            found.append(str(value))
    return "a member's process did not get ready: " + ("\n".join(found) or "no report")
