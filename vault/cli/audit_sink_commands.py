"""``gwvault audit sink ...``: where the trail goes as it is written (syslog over TLS, HTTPS).

An admin's commands (the CLI's operator).  No secret is configured or shown: a
sink authenticates its server by the CA given, and the records prove
themselves.  The sinks and their sending live in ``vault.audit.sinks``.
"""

from __future__ import annotations

import argparse
from typing import Any

from vault.cli.confirmation import add_yes_flag, confirm_destruction
from vault.cli.flags import ca_from_file
from vault.cli.output import EXIT_OK, print_json, report_failure


def add_parsers(actions: Any) -> None:
    sink = actions.add_parser("sink", help="audit sinks: the trail streamed off the machine")
    sink_actions = sink.add_subparsers(dest="sink_command", required=True, metavar="ACTION")
    add = sink_actions.add_parser("add", help="send every entry from now on to a sink")
    add.add_argument("name", metavar="NAME")
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--syslog", metavar="HOST:PORT", help="RFC 5424 over TLS (RFC 5425); port 6514 if omitted"
    )
    where.add_argument("--webhook", metavar="URL", help="https://... that receives JSON Lines")
    add.add_argument(
        "--ca-file", metavar="F",
        help="CA certificates (PEM) the server's must chain to (required for --syslog)",
    )  # fmt: skip
    add.add_argument(
        "--policy", choices=("block", "buffer"), default="block",
        help="block (default): a change fails when the sink cannot take its entries;"
        " buffer: changes go on and the sink catches up, in order, when it is back",
    )  # fmt: skip
    sink_actions.add_parser("list", help="the sinks and how far behind each is").add_argument(
        "--json", action="store_true"
    )
    remove = sink_actions.add_parser("remove", help="stop sending to a sink")
    remove.add_argument("name", metavar="NAME")
    add_yes_flag(remove)
    send = sink_actions.add_parser("send", help="send the buffer sinks what they missed, now")
    send.add_argument("--json", action="store_true")


def audit_sink(args: argparse.Namespace) -> int:
    handler = {"add": _add, "list": _list, "remove": _remove, "send": _send}[args.sink_command]
    return handler(args)


def _add(args: argparse.Namespace) -> int:
    from agent_keys.errors import InvalidInputError
    from vault.audit.sinks.config import AuditSinkConfig, syslog_config
    from vault.audit.sinks.registry import AuditSinkService
    from vault.notify.sink_config import webhook_config

    ca_pem = ca_from_file(args.ca_file) if args.ca_file is not None else None
    config: AuditSinkConfig
    if args.syslog is not None:
        if ca_pem is None:
            raise InvalidInputError(
                "--syslog needs --ca-file: the collector's certificate is checked against its CA"
            )
        config = syslog_config(args.syslog, ca_pem)
    else:
        config = webhook_config(args.webhook, ca_pem)
    from vault.cli.opening import open_for_cli

    with open_for_cli(args) as gateway:
        sink = AuditSinkService(gateway).add(args.name, config, args.policy)
    print(f"added audit sink {sink.name} ({sink.kind}, {sink.policy}): {sink.destination}")
    print("it receives every entry from the one that records this addition on")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from vault.audit.sinks.standing import sink_lags
    from vault.cli.opening import open_for_cli

    with open_for_cli(args) as gateway:
        lags = sink_lags(gateway)
    views = [vars(lag) for lag in lags]
    if args.json:
        print_json(views)
    elif not views:
        print("no audit sinks (add one: gwvault audit sink add NAME --syslog HOST:PORT ...)")
    for lag in [] if args.json else lags:
        state = "up to date" if not lag.behind else f"{lag.behind} entries behind"
        if lag.failing_since:
            state += f"; failing since {lag.failing_since}: {lag.last_error}"
        print(f"{lag.name}  {lag.policy}  {lag.destination}  {state}")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    from vault.audit.sinks.registry import AuditSinkService

    confirm_destruction(
        args,
        f"Remove the audit sink {args.name}?",
        f"{args.name} receives no more entries; a rollback after now is not caught by its copy.",
    )
    from vault.cli.opening import open_for_cli

    with open_for_cli(args) as gateway:
        AuditSinkService(gateway).remove(args.name)
    print(f"removed audit sink {args.name}")
    return EXIT_OK


def _send(args: argparse.Namespace) -> int:
    from vault.audit.sinks.delivery import deliver_buffered
    from vault.cli.opening import open_for_cli

    with open_for_cli(args) as gateway:
        report = deliver_buffered(gateway)
    if args.json:
        print_json({"sent": report.sent, "failing": report.failing})
    else:
        for name, count in sorted(report.sent.items()):
            print(f"{name}: sent {count} entries")
        for name, why in sorted(report.failing.items()):
            print(f"{name}: not sent: {why}")
        if not report.sent and not report.failing:
            print("every buffer sink is up to date")
    if report.failing:
        return report_failure(f"{len(report.failing)} buffer sinks could not be sent to")
    return EXIT_OK
