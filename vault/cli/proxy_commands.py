"""``gwvault proxy show|set|clear``: the HTTP proxy of gwvault's HTTPS traffic.

HTTP data-source tests, notification webhooks and the audit trail's HTTPS sink
go through it; database tests and SMTP do not.  The password is read from
``--password-file``, a pipe or a prompt (never a flag) and never shown again:
``show`` says only that one is set.  The settings live in ``vault.proxy``.
"""

from __future__ import annotations

import argparse

from agent_keys.errors import InvalidInputError
from vault.cli.flags import Commands
from vault.cli.input import read_secret
from vault.cli.opening import open_for_cli
from vault.cli.output import EXIT_OK, print_json


def add_parsers(commands: Commands) -> None:
    proxy = commands.add_parser(
        "proxy", help="the HTTP proxy for HTTP data-source tests and webhooks"
    )
    actions = proxy.add_subparsers(dest="proxy_command", required=True, metavar="ACTION")
    actions.add_parser("show", help="show the settings (never the password)").add_argument(
        "--json", action="store_true", help="machine-readable output"
    )
    change = actions.add_parser("set", help="use no proxy, the system's, or one of your own")
    change.add_argument("mode", choices=("none", "system", "custom"))
    change.add_argument("--url", metavar="URL", help="custom: http://HOST:PORT")
    change.add_argument("--user", metavar="U", help="custom: the proxy's user (Basic)")
    change.add_argument(
        "--password-file", metavar="F", help="with --user: file (mode 0600); else pipe or prompt"
    )
    change.add_argument(
        "--no-proxy", metavar="LIST", help="custom: hosts reached directly: name,.domain,CIDR"
    )
    actions.add_parser("clear", help="go back to direct connections")


def proxy_show(args: argparse.Namespace) -> int:
    from vault.proxy.loading import load_proxy

    with open_for_cli(args) as gateway:
        facts = load_proxy(gateway).facts()
    if args.json:
        print_json(facts)
        return EXIT_OK
    print(f"mode: {facts['mode']}")
    if facts["mode"] == "system":
        print("from: this process's HTTPS_PROXY and NO_PROXY")
    if facts["problem"]:
        print(f"problem: {facts['problem']}")
    if facts["mode"] != "none":
        print(f"proxy: {facts['proxy'] or '(none: direct)'}")
        print(f"user: {facts['user'] or '(none)'}")
        print(f"password: {facts['password'] or '(none)'}")
        print(f"no proxy for: {', '.join(facts['no_proxy']) or '(none)'}")  # type: ignore[arg-type]
    return EXIT_OK


def proxy_set(args: argparse.Namespace) -> int:
    from vault.proxy.stored import set_proxy

    password = None
    if args.user is not None:
        password = read_secret("proxy password", args.password_file)
    elif args.password_file is not None:
        raise InvalidInputError("--password-file goes with --user")
    with open_for_cli(args) as gateway:
        settings = set_proxy(
            gateway, args.mode, url=args.url, user=args.user, password=password,
            no_proxy=args.no_proxy,
        )  # fmt: skip
    facts = settings.facts()
    print(f"proxy: {facts['mode']}" + (f" ({facts['proxy']})" if facts["proxy"] else ""))
    return EXIT_OK


def proxy_clear(args: argparse.Namespace) -> int:
    from vault.proxy.stored import clear_proxy

    with open_for_cli(args) as gateway:
        cleared = clear_proxy(gateway)
    print("proxy cleared: connections are direct" if cleared else "no proxy was set")
    return EXIT_OK
