"""``gwvault notify ...``: where news of credentials goes (webhooks, email).

The webhook's HMAC key is generated unless ``--secret-file`` gives one, and a
generated key is printed once, on the last line; the SMTP password comes from
``--password-file``, a pipe or a prompt.  Neither is ever shown again.  The
sinks and their delivery live in ``vault.notify``.
"""

from __future__ import annotations

import argparse

from vault.cli.confirmation import add_yes_flag, confirm_destruction
from vault.cli.flags import Commands, ca_from_file
from vault.cli.input import read_secret
from vault.cli.opening import open_for_cli
from vault.cli.output import EXIT_OK, print_json, report_failure


def add_parsers(commands: Commands) -> None:
    notify = commands.add_parser("notify", help="notification sinks: webhooks and email")
    actions = notify.add_subparsers(dest="notify_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a sink")
    kinds = add.add_subparsers(dest="notify_kind", required=True, metavar="KIND")
    webhook = kinds.add_parser("webhook", help="an HTTPS URL that receives signed JSON")
    webhook.add_argument("name", metavar="NAME")
    webhook.add_argument("--url", required=True, help="https://... (never plain http)")
    webhook.add_argument(
        "--secret-file",
        metavar="F",
        help="file (mode 0600) with the HMAC key; default: one is generated and printed once",
    )
    email = kinds.add_parser("email", help="an SMTP server (STARTTLS required)")
    email.add_argument("name", metavar="NAME")
    email.add_argument("--host", required=True)
    email.add_argument("--port", type=int, default=587, help="default 587; 465 is implicit TLS")
    email.add_argument("--from", dest="sender", required=True, metavar="ADDRESS")
    email.add_argument("--to", required=True, metavar="ADDRESS[,ADDRESS]")
    email.add_argument("--user", metavar="U", help="AUTH user name (sent only over TLS)")
    email.add_argument(
        "--password-file", metavar="F", help="with --user: file (mode 0600); else pipe or prompt"
    )
    for parser in (webhook, email):
        parser.add_argument(
            "--ca-file", metavar="F", help="CA certificates (PEM) the server's must chain to"
        )
    actions.add_parser("list", help="list sinks (never a secret)").add_argument(
        "--json", action="store_true"
    )
    remove = actions.add_parser("remove", help="remove a sink and its queue")
    remove.add_argument("name", metavar="NAME")
    add_yes_flag(remove)
    test = actions.add_parser("test", help="send a test event to one sink now")
    test.add_argument("name", metavar="NAME")
    deliver = actions.add_parser("deliver", help="deliver the queued events that are due now")
    deliver.add_argument("--json", action="store_true")


def notify_add(args: argparse.Namespace) -> int:
    from vault.notify.sink_config import (
        SinkConfig,
        check_webhook_secret,
        email_config,
        parse_recipients,
        webhook_config,
    )
    from vault.notify.sinks import SinkService

    ca_pem = ca_from_file(args.ca_file) if args.ca_file is not None else None
    config: SinkConfig
    if args.notify_kind == "webhook":
        config = webhook_config(args.url, ca_pem)
        secret = None
        if args.secret_file is not None:
            secret = read_secret("webhook secret", args.secret_file)
            check_webhook_secret(secret.reveal())
    else:
        recipients = parse_recipients(args.to)
        config = email_config(args.host, args.port, args.sender, recipients,
                              user=args.user, ca_pem=ca_pem)  # fmt: skip
        secret = read_secret("SMTP password", args.password_file) if args.user else None
    with open_for_cli(args) as gateway:
        added = SinkService(gateway).add(args.name, config, secret)
    print(f"added {added.sink.kind} sink {args.name}; it receives events raised from now on")
    if added.generated_secret is not None:
        print("its HMAC key is shown once, store it with the receiver now:")
        print(added.generated_secret.reveal().decode("ascii"))
    return EXIT_OK


def notify_list(args: argparse.Namespace) -> int:
    from vault.notify.delivery import queue_places
    from vault.notify.sinks import SinkService

    with open_for_cli(args) as gateway:
        sinks = SinkService(gateway).sinks()
        places = queue_places(gateway)
    views = [{**sink.view(), **places.get(sink.id, {})} for sink in sinks]
    if args.json:
        print_json(views)
    elif not views:
        print("no sinks (add one: gwvault notify add webhook|email NAME ...)")
    for view in [] if args.json else views:
        where = view.get("url") or f"{view['host']}:{view['port']} to {','.join(view['to'])}"
        state = f"{view['waiting']} waiting" if view.get("waiting") else "up to date"
        if view.get("last_error"):
            state += f"; retrying at {view['next_attempt_at']}: {view['last_error']}"
        print(f"{view['name']}  {view['kind']}  {where}  {state}")
    return EXIT_OK


def notify_remove(args: argparse.Namespace) -> int:
    from vault.notify.sinks import SinkService

    confirm_destruction(
        args,
        f"Remove the sink {args.name}?",
        f"{args.name} receives no more events, and the events waiting for it are dropped.",
    )
    with open_for_cli(args) as gateway:
        SinkService(gateway).remove(args.name)
    print(f"removed sink {args.name}")
    return EXIT_OK


def notify_test(args: argparse.Namespace) -> int:
    from vault.notify.delivery import send_test_event
    from vault.notify.outcome import Delivered
    from vault.notify.sinks import SinkService

    with open_for_cli(args) as gateway:
        outcome = send_test_event(gateway, SinkService(gateway), args.name)
    if not isinstance(outcome, Delivered):
        return report_failure(f"the test event did not reach {args.name}: {outcome.reason}")
    print(f"the test event reached {args.name}")
    return EXIT_OK


def notify_deliver(args: argparse.Namespace) -> int:
    from vault.notify.delivery import deliver_due

    with open_for_cli(args) as gateway:
        report = deliver_due(gateway)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"delivered {report.delivered}, retrying {report.retrying}, failed {report.failed}")
    if report.errors:
        return report_failure("; ".join(report.errors))
    return EXIT_OK
