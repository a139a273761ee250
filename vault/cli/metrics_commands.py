"""``gwvault metrics ...``: who may scrape ``/metrics`` and whether it names credentials.

``token`` makes the scrape token (the one before stops working) and shows it
once, on the last line, or writes it to a new 0600 file for Prometheus'
``credentials_file``; ``revoke`` turns scraping off; ``set --per-credential``
adds or drops the series that name each credential.  Each is an audit entry
(``vault.metrics.settings``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vault.cli.flags import Commands
from vault.cli.input import write_private_output
from vault.cli.opening import open_for_cli
from vault.cli.output import EXIT_OK, print_fields, print_json


def add_parsers(commands: Commands) -> None:
    metrics = commands.add_parser("metrics", help="the Prometheus metrics: scrape token, series")
    actions = metrics.add_subparsers(dest="metrics_command", required=True, metavar="ACTION")
    actions.add_parser("show", help="show the settings").add_argument("--json", action="store_true")
    token = actions.add_parser(
        "token", help="make the scrape token (replaces the one before); shown once"
    )
    token.add_argument(
        "--out", metavar="FILE", type=Path, help="write it to this new file (0600) instead"
    )
    actions.add_parser("revoke", help="turn scraping off: no token is accepted")
    set_ = actions.add_parser("set", help="change the settings")
    set_.add_argument(
        "--per-credential",
        required=True,
        metavar="on|off",
        help="series naming each credential (default off: counts only)",
    )


def metrics_show(args: argparse.Namespace) -> int:
    from vault.metrics.settings import load_metrics_settings

    with open_for_cli(args) as gateway:
        view = load_metrics_settings(gateway).view()
    if args.json:
        print_json(view)
    else:
        print_fields({key: "on" if value else "off" for key, value in view.items()})
    return EXIT_OK


def metrics_token(args: argparse.Namespace) -> int:
    from vault.metrics.settings import new_scrape_token

    out: Path | None = args.out
    if out is not None:
        write_private_output(out, b"")  # new and ours before a token exists to lose
    try:
        with open_for_cli(args) as gateway:
            token = new_scrape_token(gateway)
    except BaseException:
        if out is not None:
            out.unlink(missing_ok=True)
        raise
    if out is not None:
        out.write_text(token + "\n", encoding="ascii")
        print(f"made the scrape token (the one before no longer works); written to {out}")
        return EXIT_OK
    print("made the scrape token (the one before no longer works); it is shown once:")
    print(token)
    return EXIT_OK


def metrics_revoke(args: argparse.Namespace) -> int:
    from vault.metrics.settings import revoke_scrape_token

    with open_for_cli(args) as gateway:
        revoke_scrape_token(gateway)
    print("scraping is off: no token is accepted until gwvault metrics token")
    return EXIT_OK


def metrics_set(args: argparse.Namespace) -> int:
    from vault.metrics.settings import parse_switch, set_per_credential

    on = parse_switch(args.per_credential)
    with open_for_cli(args) as gateway:
        set_per_credential(gateway, on)
    print(f"per-credential series {'on: names appear' if on else 'off: counts only'}")
    return EXIT_OK
