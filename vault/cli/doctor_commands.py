"""``gwvault doctor`` and ``gwvault diagnostics``: the posture, and a bundle for support."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from agent_keys.errors import InvalidInputError
from vault.cli.flags import Commands
from vault.cli.input import pin_source, write_private_output
from vault.cli.opening import data_dir
from vault.cli.output import EXIT_FAILED, EXIT_OK, print_json

if TYPE_CHECKING:
    from agent_keys.keystore import PinSource
    from vault.doctor.checks import DoctorSubject
    from vault.gateway import Gateway


def add_parsers(commands: Commands) -> None:
    doctor = commands.add_parser(
        "doctor", help="check swap, core dumps, file modes, certificates, backups, clock, store"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    diagnostics = commands.add_parser(
        "diagnostics", help="write a zip for support: versions, doctor, status, settings, logs"
    )
    diagnostics.add_argument(
        "--out", required=True, metavar="FILE.zip", help="a new file (never overwritten)"
    )


def doctor(args: argparse.Namespace) -> int:
    from vault.doctor.run import run_doctor

    subject = _subject(args)
    try:
        report = run_doctor(subject)
    finally:
        subject.close()
    if args.json:
        print_json(report.view())
    else:
        print("\n".join(report.lines()))
    return EXIT_OK if report.ok else EXIT_FAILED


def diagnostics(args: argparse.Namespace) -> int:
    from vault.diagnostics.bundle import build_bundle

    out = Path(args.out)
    # Refused before the vault is opened or any check runs; the write below
    # refuses it again (O_EXCL), should one appear meanwhile.
    if os.path.lexists(out):
        raise InvalidInputError(f"{out} exists; not overwriting it")
    if not out.parent.is_dir():
        raise InvalidInputError(f"cannot write {out}: its directory does not exist")
    subject = _subject(args)
    try:
        names, data = build_bundle(subject)
    finally:
        subject.close()
    write_private_output(out, data)
    print(f"wrote {out} (0600): {', '.join(names)}")
    print("it holds no secret, token or key; read it before you send it")
    return EXIT_OK


def _subject(args: argparse.Namespace) -> DoctorSubject:
    from vault.doctor.checks import DoctorSubject

    return DoctorSubject(data_dir(args), pin_source(args.pin_file), _open_vault)


def _open_vault(path: Path, pin: PinSource) -> Gateway:
    from vault.context import RequestContext
    from vault.gateway import Gateway

    return Gateway.open(path, RequestContext.for_cli(), pin)
