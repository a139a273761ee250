"""``gwvault audit ...``: list, verify, export, verify an export, prune.

``verify-export`` opens no vault and reads no secret: an auditor runs it on
any machine with the export and the gateway's public certificate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from vault.cli import audit_sink_commands
from vault.cli.flags import Commands
from vault.cli.input import read_public_file, write_private_output
from vault.cli.output import EXIT_OK, print_json, report_failure
from vault.format.fingerprints import colon_hex_of_b64url

if TYPE_CHECKING:
    from vault.audit.sinks.against import AgainstReport
    from vault.audit.verify import TrailReport


def add_parsers(commands: Commands) -> None:
    audit = commands.add_parser("audit", help="the tamper-evident audit trail")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="events, newest first")
    listing.add_argument("--credential", metavar="NAME", help="one credential's timeline")
    listing.add_argument("--action", metavar="A", help="an action, or a prefix such as user.*")
    listing.add_argument("--since", metavar="T", help="ISO 8601 date or time (UTC if no offset)")
    listing.add_argument("--limit", metavar="N", default="100", help="at most N events (1-1000)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    verify = actions.add_parser(
        "verify", help="check the chain, MACs and signed checkpoints; exit 1 if tampered"
    )
    verify.add_argument(
        "--against", metavar="FILE",
        help="also compare with what an audit sink received (its JSON Lines or syslog file):"
        " catches a cut or rolled-back tail",
    )  # fmt: skip
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    export = actions.add_parser(
        "export", help="write the trail, with a signed checkpoint, as JSONL"
    )
    export.add_argument("--out", required=True, metavar="FILE.jsonl", help="a new file (0600)")
    check = actions.add_parser(
        "verify-export", help="verify an export with the gateway certificate (no vault needed)"
    )
    check.add_argument("file", metavar="FILE.jsonl")
    check.add_argument(
        "--cert", required=True, metavar="GATEWAY.pem", help="the gateway certificate"
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    prune = actions.add_parser(
        "prune", help="remove entries older than T; a signed checkpoint keeps the rest verifiable"
    )
    prune.add_argument("--before", required=True, metavar="T", help="ISO 8601 date or time")
    audit_sink_commands.add_parsers(actions)


def audit_sink(args: argparse.Namespace) -> int:
    return audit_sink_commands.audit_sink(args)


def audit_list(args: argparse.Namespace) -> int:
    from vault.audit.log import AuditLog, AuditQuery, entry_view
    from vault.cli.opening import open_for_cli

    query = AuditQuery.parse(
        credential=args.credential, action=args.action, since=args.since, limit=args.limit
    )
    with open_for_cli(args) as gateway:
        entries = [entry_view(entry) for entry in AuditLog(gateway).find(query)]
    if args.json:
        print_json(entries)
    elif not entries:
        print("no matching events")
    for entry in [] if args.json else entries:
        target = entry["target"] if entry["target"] is not None else "-"
        print(
            f"{entry['seq']}  {entry['at']}  {entry['actor']}  {entry['channel']}"
            f"  {entry['action']}  {target}  {entry['outcome']}  {json.dumps(entry['details'])}"
        )
    return EXIT_OK


def audit_verify(args: argparse.Namespace) -> int:
    from vault.audit.incremental import full_check_and_mark
    from vault.cli.opening import open_for_cli

    # The full check; a pass moves the mark the page and the API check from.
    with open_for_cli(args) as gateway:
        report = full_check_and_mark(gateway, f"cli:{gateway.context.actor}")
        if args.against is not None:
            from vault.audit.sinks.against import verify_against

            against = verify_against(gateway.store, gateway.gateway_id, Path(args.against))
            return _print_against(report, against, args.json)
    return _print_report(report, args.json)


def audit_export(args: argparse.Namespace) -> int:
    from vault.audit.log import AuditLog
    from vault.cli.opening import open_for_cli

    out = Path(args.out)
    written: list[Path] = []
    try:
        with open_for_cli(args) as gateway:
            closing = AuditLog(gateway).export(
                lambda lines: written.append(write_private_output(out, lines))
            )
    except BaseException:
        # The export's audit entry rolled back: leave no file it does not record.
        for path in written:
            path.unlink(missing_ok=True)
        raise
    signer = colon_hex_of_b64url(closing.thumbprint)
    print(f"wrote entries up to {closing.seq} and a checkpoint signed by SHA-256 {signer}")
    print(
        f"to {out}; an auditor checks it with: gwvault audit verify-export {out} --cert GATEWAY.pem"
    )
    return EXIT_OK


def audit_verify_export(args: argparse.Namespace) -> int:
    from agent_keys.gateway_identity import MAX_CERT_PEM_BYTES, GatewayCertificate
    from vault.audit.export import verify_export

    pem = read_public_file(Path(args.cert), "certificate", MAX_CERT_PEM_BYTES)
    certificate = GatewayCertificate.from_pem(pem)
    header, report = verify_export(Path(args.file), certificate)
    if not args.json:
        print(f"export of gateway {header.gateway_name} ({header.gateway_id})")
        print(f"made {header.exported_at} by {header.exported_by}")
    return _print_report(report, args.json)


def audit_prune(args: argparse.Namespace) -> int:
    from vault.audit.log import AuditLog, parse_utc_time
    from vault.cli.opening import open_for_cli

    before = parse_utc_time(args.before, "--before")
    with open_for_cli(args) as gateway:
        result = AuditLog(gateway).prune(before)
    if result.removed:
        print(
            f"removed {result.removed} entries up to {result.through_seq}; a checkpoint signed"
            " there keeps the rest verifiable"
        )
    else:
        print("no entries older than that; nothing removed")
    return EXIT_OK


def _print_against(report: TrailReport, against: AgainstReport, as_json: bool) -> int:
    if as_json:
        print_json({**report.to_dict(), "against": against.to_dict()})
    else:
        print(f"local trail: {report.summary()}")
        print(f"against the sink's copy: {against.summary()}")
        for note in against.notes:
            print(f"  {note}")
    if report.ok and against.ok:
        return EXIT_OK
    failed = report.summary() if not report.ok else against.summary()
    return report_failure(f"the audit trail does not verify: {failed}")


def _print_report(report: TrailReport, as_json: bool) -> int:
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        print(report.summary())
        if report.unkeyed:
            print(
                f"{report.unkeyed} entries carry no MAC: failed unlocks, or written before"
                " this vault had an audit key"
            )
        if report.unvouched:
            print(
                f"{report.unvouched} signed checkpoints were not counted: no rotation record"
                " links their certificate to the one trusted (a key rotated before gwvault"
                " signed rotation records, or a certificate put in the file)"
            )
    if report.ok:
        return EXIT_OK
    return report_failure(f"the audit trail does not verify: {report.summary()}")
