"""``gwvault scheduler``, ``credentials test --all`` and ``credentials history``:
the scheduled health checks from the command line.

``credential_commands`` hands ``credentials test --all`` (``test_all_now``) and
``credentials history`` (``history``) here; the local operator is an admin, so
the driver's words are shown.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from vault.cli.flags import Commands
from vault.cli.output import EXIT_OK, print_json, report_failure

if TYPE_CHECKING:
    from vault.health.checks import CheckOutcome

TICK_SECONDS = 60.0
"""How often the scheduler looks for due credentials (each has its own time)."""
PURGE_SECONDS = 3600.0
"""How often it purges deleted credentials past their retention."""


def add_parsers(commands: Commands) -> None:
    scheduler = commands.add_parser(
        "scheduler",
        help="run the scheduled health checks (in a cluster, on the member holding their lease)",
    )
    scheduler.add_argument(
        "--once", action="store_true", help="one run of the due checks, then exit (for cron)"
    )
    scheduler.add_argument("--json", action="store_true", help="with --once: machine-readable")


def add_credential_parsers(actions: Commands) -> None:
    """``credentials history``; ``credentials test``'s ``--all`` is beside its NAME."""
    history = actions.add_parser("history", help="a credential's tests and status changes")
    history.add_argument("name", metavar="NAME")
    history.add_argument("--limit", metavar="N", default="50", help="at most N entries (1-1000)")
    history.add_argument("--json", action="store_true", help="machine-readable output")


def scheduler(args: argparse.Namespace) -> int:
    from vault.cli.opening import open_for_cli
    from vault.credential_purge import purge_expired_credentials
    from vault.health.checks import tick

    stop = threading.Event()
    with open_for_cli(args) as gateway:
        if args.once:
            outcomes = tick(gateway)
            return _report([o.view(admin=True) for o in outcomes], args.json)
        _stop_on_signals(stop)
        purge_due = time.monotonic()
        while not stop.is_set():
            _say(lambda: _tested(tick(gateway)))
            if time.monotonic() >= purge_due:  # as the housekeeper of `gwvault serve` does
                purge_due = time.monotonic() + PURGE_SECONDS
                _say(lambda: _purged(purge_expired_credentials(gateway)))
            stop.wait(TICK_SECONDS)
    return EXIT_OK


def _say(step: Callable[[], str]) -> None:
    """One step of the loop and its line; another member's lease is no failure."""
    from vault.cluster.lease import LeaseLostError

    try:
        print(step(), flush=True)
    except LeaseLostError as e:
        print(f"not this member's turn: {e}", flush=True)


def _tested(outcomes: list[CheckOutcome]) -> str:
    failed = sum(1 for outcome in outcomes if not outcome.ok)
    return f"tested {len(outcomes)} credentials, {failed} not ok"


def _purged(names: tuple[str, ...]) -> str:
    return f"purged {len(names)} deleted credentials past their retention"


def test_all_now(args: argparse.Namespace) -> int:
    from vault.cli.opening import open_for_cli
    from vault.credentials import CredentialService
    from vault.health.checks import test_all

    with open_for_cli(args) as gateway:
        outcomes = test_all(gateway, CredentialService(gateway))
    return _report([o.view(admin=True) for o in outcomes], args.json)


def history(args: argparse.Namespace) -> int:
    from vault.audit.log import bounded_int
    from vault.cli.opening import open_for_cli
    from vault.health.history import test_history

    limit = bounded_int(args.limit, "limit", 1, 1000) or 50
    with open_for_cli(args) as gateway:
        entries = test_history(gateway, args.name, admin=True, limit=limit)
    if args.json:
        print_json(entries)
    elif not entries:
        print(f"no tests of {args.name} recorded")
    for entry in [] if args.json else entries:
        if entry["event"] == "status-changed":
            print(f"{entry['at']}  status changed  {entry['old_reason']} -> {entry['new_reason']}")
        else:
            expiry = f"  expires {entry['server_expires_at']}" if entry["server_expires_at"] else ""
            print(f"{entry['at']}  {entry['trigger']:<9}  {entry['reason']}{expiry}"
                  f"  {entry.get('detail') or ''}")  # fmt: skip
    return EXIT_OK


def _report(rows: list[dict[str, Any]], as_json: bool) -> int:
    """The table (or JSON) of a run; exit 1 when any credential is not ok."""
    if as_json:
        print_json(rows)
    elif not rows:
        print("no credentials to test")
    for row in [] if as_json else rows:
        expiry = f"  expires {row['server_expires_at']}" if row["server_expires_at"] else ""
        print(f"{row['name']}  {row['result'] or 'not tested'}  {row['seconds']:.2f}s{expiry}"
              f"  {row['result_detail']}")  # fmt: skip
    failed = [row["name"] for row in rows if row["result"] != "ok"]
    if failed:
        return report_failure(f"{len(failed)} of {len(rows)} credentials are not ok")
    return EXIT_OK


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
