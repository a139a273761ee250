"""``gwvault cert ...``: the gateway certificate - show and export (PEM)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from agent_keys.errors import InvalidInputError
from vault.cli import EXIT_OK, print_fields, print_json
from vault.cli_commands import open_for_cli

if TYPE_CHECKING:
    from vault.cli_parser import _Commands


def add_parsers(commands: _Commands) -> None:
    cert = commands.add_parser("cert", help="the gateway certificate")
    actions = cert.add_subparsers(dest="cert_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print the current certificate's facts")
    show.add_argument("--json", action="store_true")
    export = actions.add_parser("export", help="write the certificate to a file")
    export.add_argument(
        "--public", action="store_true", required=True, help="the public certificate (PEM)"
    )
    export.add_argument("--out", required=True, metavar="FILE.pem")


def cert_show(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        cert = gateway.certificate()
    facts = {
        "name": cert.name,
        "gateway_id": cert.gateway_id,
        "key_type": cert.key_type,
        "thumbprint": cert.thumbprint,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "serial": format(cert.certificate.serial_number, "x"),
    }
    if args.json:
        print_json({**facts, "pem": cert.pem.decode("ascii")})
    else:
        print_fields(facts)
    return EXIT_OK


def cert_export(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        pem = gateway.certificate().pem
    out = Path(args.out)
    try:
        out.write_bytes(pem)
        out.chmod(0o644)  # a public certificate is meant to be shared
    except OSError as e:
        raise InvalidInputError(f"cannot write {out}: {e.strerror}") from e
    print(f"wrote the gateway certificate to {out}")
    return EXIT_OK
