"""Worker processes: forked from the parent that unlocked the vault once.

The parent binds the socket and holds the unlocked GMK; each worker is a fork
of it, so it inherits both and never touches the keystore (an HSM is used once,
at start).  Workers share the listening socket, so the kernel hands each new
connection to one that is waiting in accept: a busy worker takes fewer.  The
parent does no request work: it restarts a worker that died, and on SIGTERM
or Ctrl-C stops them all and waits for their requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from web.server.limits import ServerLimits
from web.server.listener import Listener
from web.server.wsgi_call import WsgiApp

log = logging.getLogger("gwvault.server")

_WATCHED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
RESTARTS_PER_MINUTE = 10
HOUSEKEEPER = -1
STOP_GRACE_SECONDS = 15.0


@dataclass
class HttpsService:
    """What every worker serves: one app on one socket with one TLS context."""

    app: WsgiApp
    sock: socket.socket
    tls: ssl.SSLContext
    limits: ServerLimits
    around_worker: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
    """Entered in each worker after the fork, around its serving (per-process jobs)."""
    housekeeper: Callable[[threading.Event], None] | None = None
    """Run in a process of its own beside the workers until the event is set (long
    jobs that would hold a worker's GIL for seconds); restarted if it dies."""
    after_fork: Callable[[], object] = lambda: None
    """Called first in every child, the housekeeper too (what a fork does not
    inherit: memory locks)."""
    on_started: Callable[[], None] = lambda: None
    """Called in the parent once the first workers are forked (readiness)."""
    on_stopping: Callable[[], None] = lambda: None
    """Called in the parent when it starts stopping the workers."""
    worker_exited: Callable[[int], None] = lambda _pid: None
    """Told each reaped child's pid, in the parent (what only a live process reports goes)."""


def run_workers(endpoint: HttpsService, count: int) -> int:
    """Serve with ``count`` worker processes until SIGTERM or SIGINT; the exit status.

    A worker that dies is restarted, unless workers keep dying
    (``RESTARTS_PER_MINUTE``): then all stop and the status is 1, since a
    service manager restarting the whole service is clearer than a loop here.
    """
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    children: dict[int, int] = {}  # pid -> worker index (HOUSEKEEPER for the housekeeper)
    deaths: list[float] = []
    try:
        indexes = [*range(count), *([HOUSEKEEPER] if endpoint.housekeeper else [])]
        for index in indexes:
            children[_fork_worker(endpoint, index, previous_mask)] = index
        endpoint.on_started()
        while True:
            signalled = signal.sigtimedwait(_WATCHED, 1.0)
            if signalled is None or signalled.si_signo == signal.SIGCHLD:
                for index in _reap(children, endpoint.worker_exited):
                    deaths.append(time.monotonic())
                    deaths[:] = [t for t in deaths if t > time.monotonic() - 60]
                    if len(deaths) > RESTARTS_PER_MINUTE:
                        log.error("workers keep dying; stopping the endpoint")
                        return 1
                    children[_fork_worker(endpoint, index, previous_mask)] = index
                continue
            return 0  # SIGTERM or SIGINT
    finally:
        endpoint.on_stopping()
        _stop(children)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def _fork_worker(endpoint: HttpsService, index: int, parent_mask: set[int | signal.Signals]) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:  # the child: never returns into the parent's code
        endpoint.after_fork()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
        signal.pthread_sigmask(signal.SIG_SETMASK, parent_mask - _WATCHED)
        _stop_with_parent(parent)
        if index == HOUSEKEEPER and endpoint.housekeeper is not None:
            _keep_house(endpoint.housekeeper)
        else:
            with endpoint.around_worker():
                serve_in_this_process(endpoint)
        status = 0
    except BaseException as e:
        log.error("worker %d failed: %s", index, type(e).__name__)  # -1: the housekeeper
    finally:
        os._exit(status)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with_parent(parent: int) -> None:
    """SIGTERM this worker when the parent dies, even by SIGKILL: no orphan keeps
    serving with a GMK nobody can stop it from holding."""
    with contextlib.suppress(OSError, AttributeError):  # Linux only; elsewhere a best effort
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _keep_house(housekeeper: Callable[[threading.Event], None]) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    housekeeper(stop)


def serve_in_this_process(endpoint: HttpsService) -> None:
    """Run one listener in this process until SIGTERM."""
    listener = Listener(endpoint.app, endpoint.sock, endpoint.tls, endpoint.limits)

    async def main() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, listener.stop)
        await listener.serve()

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())


def _reap(children: dict[int, int], exited: Callable[[int], None]) -> Iterator[int]:
    """The indexes of workers that have exited (each reaped)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        index = children.pop(pid, None)
        exited(pid)
        if index is not None:
            role = "the housekeeper" if index == HOUSEKEEPER else f"worker {index}"
            log.error("%s exited (status %d); starting it again", role, status)
            yield index


def _stop(children: dict[int, int]) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while children and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                children.pop(pid, None)
                continue
        time.sleep(0.05)
    for pid in children:  # past the grace: requests still running are cut
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency; asyncio's loop works, slower
        return asyncio.new_event_loop
    return uvloop.new_event_loop


@contextlib.contextmanager
def serving_in_thread(endpoint: HttpsService) -> Iterator[Listener]:
    """The endpoint in a thread of this process (tests): one listener, stopped on exit."""
    listener = Listener(endpoint.app, endpoint.sock, endpoint.tls, endpoint.limits)

    def run() -> None:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(listener.serve(grace_seconds=2.0))

    thread = threading.Thread(target=run, name="gwvault-endpoint", daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        deadline = time.monotonic() + 5
        while listener.loop is None and time.monotonic() < deadline:
            time.sleep(0.01)
        listener.stop()
        thread.join(timeout=10)
