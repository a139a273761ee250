"""``gwvault entry-link create|list|revoke``: single-use links to enter one credential.

The secret is printed once, by ``create``, inside the link; ``list`` shows the
open links by id and never a secret (only hashes are stored).  The link's
address is, in order: ``--url-base``; the address the running ``gwvault
serve`` of this data dir listens on; the stored endpoint settings.  The
command says which it used, so an admin never hands out a port nothing serves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agent_keys.errors import InvalidInputError
from vault.access.endpoint_settings import load_endpoint
from vault.access.grants import ENTRY_LINK_TESTS, AccessGrants, OpenEntryLink
from vault.cli.access_commands import parse_duration
from vault.cli.confirmation import confirm_destruction
from vault.cli.flags import target_from_flags
from vault.cli.opening import data_dir, open_for_cli
from vault.cli.output import EXIT_OK, print_json
from vault.gateway import Gateway
from vault.served_address import ServedAddress, parse_url_base, served_address

_NAME_THE_ADDRESS = "name the address people reach it by: --url-base https://HOST[:PORT]"


def entry_link_create(args: argparse.Namespace) -> int:
    lifetime = parse_duration(args.expires)
    given = None if args.url_base is None else parse_url_base(args.url_base)
    with open_for_cli(args) as gateway:
        # Decided before the link is made: a refusal leaves no link behind.
        base, source = (given, "--url-base") if given else _link_base(gateway, data_dir(args))
        secret, link = AccessGrants(gateway).create_entry_link(
            args.datasource, target_from_flags(args), lifetime
        )
    target = f"{link.target.type} {link.target.server}"
    print(
        f"entry link for {link.datasource} ({target}), single use, at most"
        f" {ENTRY_LINK_TESTS} tests, expires {link.expires_at.isoformat()};"
        f" id {link.id}; address from {source}:"
    )
    print(f"{base}/entry/{secret}")
    return EXIT_OK


def _link_base(gateway: Gateway, directory: Path) -> tuple[str, str]:
    """The base of a link and where it came from; ``InvalidInputError`` when no
    one address can be given out."""
    if gateway.member_id is not None:
        # Members serve on their own addresses, often behind a load balancer
        # people reach instead: only the admin knows which address to hand out.
        raise InvalidInputError(f"this gateway is a cluster member; {_NAME_THE_ADDRESS}")
    served = served_address(directory)
    if served is not None:
        return _reachable(served, f"the running gwvault serve (pid {served.pid})")
    stored = load_endpoint(gateway)
    return _reachable(
        ServedAddress(stored.host, stored.port, 0), "the endpoint settings (no gwvault serve runs)"
    )


def _reachable(address: ServedAddress, source: str) -> tuple[str, str]:
    if address.is_wildcard:
        raise InvalidInputError(
            f"{source} listens on every address ({address.host}); {_NAME_THE_ADDRESS}"
        )
    return address.url, source


def entry_link_list(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        links = AccessGrants(gateway).open_entry_links()
    if args.json:
        print_json([open_link.view() for open_link in links])
    elif not links:
        print("no open entry links")
    else:
        for open_link in links:
            print(_line(open_link))
    return EXIT_OK


def _line(open_link: OpenEntryLink) -> str:
    link, target = open_link.link, open_link.link.target
    where = target.server + (f"/{target.database}" if target.database else "")
    return (
        f"{link.id}  {link.datasource}  {target.type} {where} ({target.tls})"
        f"  by {link.created_by}  expires {link.expires_at.isoformat()}"
        f"  tests {open_link.tests_used}/{ENTRY_LINK_TESTS}"
    )


def entry_link_revoke(args: argparse.Namespace) -> int:
    confirm_destruction(
        args,
        f"Revoke the entry link {args.id}?",
        "Whoever holds it can no longer enter the credential.",
    )
    with open_for_cli(args) as gateway:
        link = AccessGrants(gateway).revoke_entry_link(args.id)
    print(f"revoked the entry link {link.id} for {link.datasource}; it opens nothing now")
    return EXIT_OK
