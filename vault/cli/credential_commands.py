"""``gwvault encrypt-value`` and ``gwvault credentials ...``: entering and checking credentials.

Each handler opens the vault for one CLI request context, calls the service
layer and prints.  Errors propagate to ``vault.cli.main``, which prints them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import MAX_CERT_PEM_BYTES, GatewayCertificate
from agent_keys.secret import Secret
from vault.cli import health_commands
from vault.cli.confirmation import confirm_destruction, will_ask
from vault.cli.connection_strings import (
    check_no_login_flags,
    connection_string_given,
    sealed_token,
    string_payload,
    string_target,
)
from vault.cli.flags import target_from_flags
from vault.cli.input import read_public_file, read_secret
from vault.cli.life_commands import due_lines, life_change_from_flags, life_lines
from vault.cli.opening import open_for_cli
from vault.cli.output import EXIT_OK, print_fields, print_json, report_failure
from vault.connectors.connection import ConnectionCredential
from vault.connectors.dispatch import validate_data_source
from vault.context import RequestContext
from vault.credential_due import due_report, parse_within
from vault.credentials import CredentialService, VerifyReport
from vault.format.data_source import parse_auth_type
from vault.format.encrypted_credential import (
    MAX_TOKEN_CHARS,
    CredentialPayload,
    SealedTarget,
    seal_credential,
)
from vault.health.status import health_line, health_views
from vault.names import check_datasource_name
from vault.store.records import CredentialRecord


def encrypt_value(args: argparse.Namespace) -> int:
    pem = read_public_file(Path(args.cert), "certificate", MAX_CERT_PEM_BYTES)
    certificate = GatewayCertificate.from_pem(pem)
    datasource = check_datasource_name(args.datasource)
    given = string_target(args, sealing=True) if connection_string_given(args) else None
    target = given.source if given else target_from_flags(args)
    payload = string_payload(given, args) if given else _payload_from_flags(args)
    validate_data_source(
        target, ConnectionCredential(payload.auth, payload.username, payload.secret)
    )
    context = RequestContext.for_cli()
    sealed = seal_credential(
        certificate,
        datasource,
        SealedTarget.of(target),
        payload,
        issued_at=int(context.clock().timestamp()),
        random=context.random,
    )
    print(given.parsed.with_sealed(sealed) if given else sealed)
    return EXIT_OK


def credentials_put(args: argparse.Namespace) -> int:
    given = string_target(args, sealing=False) if connection_string_given(args) else None
    if given is not None:
        check_no_login_flags(args)
    source = given.source if given else target_from_flags(args)
    life = life_change_from_flags(args)  # checked before any prompt for the secret
    with open_for_cli(args) as gateway:
        service = CredentialService(gateway)
        if given is not None:
            result = service.put_sealed(args.name, source, sealed_token(given.parsed), life=life)
        elif args.encrypted_credential is not None:
            if args.auth or args.username or args.secret_file:
                raise InvalidInputError(
                    "--encrypted-credential carries auth, user name and secret;"
                    " drop --auth, --username and --secret-file"
                )
            token = _token(args.encrypted_credential)
            result = service.put_sealed(args.name, source, token, life=life)
        else:
            result = service.put(args.name, source, _payload_from_flags(args), life=life)
    verb = "created" if result.created else "updated"
    print(f"{verb} credential {args.name} (version {result.record.binding.version})")
    return EXIT_OK


def credentials_list(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        records = CredentialService(gateway).list(deleted=args.deleted)
        health = health_views(gateway, records, admin=True)
        rows = [{**record.metadata(), **health[record.name]} for record in records]
    if args.json:
        print_json(rows)
    elif not rows:
        print("no deleted credentials" if args.deleted else "no credentials")
    else:
        for row in rows:
            print(f"{_list_line(row)}  {health_line(row)}")
    return EXIT_OK


def _list_line(row: dict[str, Any]) -> str:
    database = f"/{row['database']}" if row["database"] else ""
    user = f" as {row['username']}" if row["username"] else ""
    line = f"{row['name']}  {row['type']}  {row['server']}{database}  {row['auth']}{user}"
    if row["state"] == "deleted":
        return f"{line}  deleted {row['deleted_at']}, purged after {row['purge_after']}"
    return f"{line}  disabled" if row["state"] == "disabled" else line


def credentials_show(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        row = CredentialService(gateway).get(args.name).metadata()
    print_json(row) if args.json else print_fields(row)
    return EXIT_OK


def credentials_set(args: argparse.Namespace) -> int:
    change = life_change_from_flags(args, required=True)
    with open_for_cli(args) as gateway:
        record = CredentialService(gateway).change_life(args.name, change)
    print(f"{args.name}: {life_lines(record.metadata())}")
    return EXIT_OK


def credentials_due(args: argparse.Namespace) -> int:
    within = parse_within(args.within)
    with open_for_cli(args) as gateway:
        rows = due_report(gateway, within)
    if args.json:
        print_json(rows)
    elif not rows:
        print(f"nothing due within {args.within}")
    else:
        print("\n".join(due_lines(rows)))
    return EXIT_OK


def credentials_delete(args: argparse.Namespace) -> int:
    if will_ask(args):
        # The window is the vault's setting: read it (and let go) before asking.
        with open_for_cli(args) as gateway:
            days = CredentialService(gateway).retention_days()
        confirm_destruction(
            args,
            f"Delete the credential {args.name}?",
            f"It opens for nobody from now on; it is kept {days} days, in which"
            f" gwvault credentials restore {args.name} brings it back, then purged.",
        )
    said = "deleted credential {name}; it can be restored until {purge_after}"
    return _change_life(args, CredentialService.delete, said)


def credentials_restore(args: argparse.Namespace) -> int:
    return _change_life(args, CredentialService.restore, "restored credential {name} ({state})")


def credentials_disable(args: argparse.Namespace) -> int:
    said = "disabled credential {name}: neither used nor tested until it is enabled again"
    return _change_life(args, CredentialService.disable, said)


def credentials_enable(args: argparse.Namespace) -> int:
    return _change_life(args, CredentialService.enable, "enabled credential {name}")


def _change_life(
    args: argparse.Namespace,
    change: Callable[[CredentialService, str], CredentialRecord],
    said: str,
) -> int:
    """Change the life of the credential ``args.name``; print what it is now
    (``said``, filled from its metadata), or its metadata with ``--json``."""
    with open_for_cli(args) as gateway:
        row = change(CredentialService(gateway), args.name).metadata()
    print_json(row) if args.json else print(said.format(**row))
    return EXIT_OK


def credentials_purge(args: argparse.Namespace) -> int:
    confirm_destruction(
        args,
        f"Purge the credential {args.name}?",
        f"Its data key is destroyed: the secret of {args.name} is gone for good,"
        " and no restore brings it back.",
    )
    with open_for_cli(args) as gateway:
        CredentialService(gateway).purge(args.name)
    if args.json:
        print_json({"name": args.name, "purged": True})
    else:
        print(f"purged credential {args.name}: its data key is destroyed")
    return EXIT_OK


def credentials_test(args: argparse.Namespace) -> int:
    if args.all != (args.name is None):
        raise InvalidInputError("give a credential NAME or --all, not both")
    if args.all:
        return health_commands.test_all_now(args)
    if args.json:
        raise InvalidInputError("--json goes with --all")
    # The local operator is an admin: any destination, and the server's own words.
    with open_for_cli(args) as gateway:
        result = CredentialService(gateway).test(args.name, any_destination=True)
    if not result.ok:
        return report_failure(
            f"connection test of {args.name} failed ({result.reason}): {result.detail}"
        )
    print(result.detail)
    if result.server_expires_at is not None:
        print(f"the server says this login expires at {result.server_expires_at}")
    return EXIT_OK


def credentials_history(args: argparse.Namespace) -> int:
    return health_commands.history(args)


def credentials_verify(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        report = CredentialService(gateway).verify(args.name)
    return report_verify(report)


def report_verify(report: VerifyReport) -> int:
    total = len(report.opened) + len(report.failed)
    print(f"{len(report.opened)} of {total} credentials open")
    if report.failed:
        return report_failure(f"these credentials do not open: {', '.join(report.failed)}")
    return EXIT_OK


def _payload_from_flags(args: argparse.Namespace) -> CredentialPayload:
    if args.type == "sqlite":
        # A SQLite file has no login: anonymous is its only auth, so it is the
        # default, and a login given for one is refused before any prompt.
        if args.username or args.secret_file or args.auth not in (None, "anonymous"):
            raise InvalidInputError(
                "a sqlite data source takes no user name or secret (its auth is anonymous);"
                " drop --auth, --username and --secret-file"
            )
        return CredentialPayload(auth="anonymous", username=None, secret=None)
    auth = parse_auth_type(args.auth or "basic")
    if auth == "anonymous":
        if args.secret_file:
            raise InvalidInputError("auth anonymous takes no secret; drop --secret-file")
        secret: Secret | None = None
    else:
        secret = read_secret("secret", args.secret_file)
    return CredentialPayload(auth=auth, username=args.username, secret=secret)


def _token(value: str) -> str:
    if value.startswith("@"):
        raw = read_public_file(Path(value[1:]), "EncryptedCredential", MAX_TOKEN_CHARS)
        try:
            return raw.decode("ascii").strip()
        except UnicodeDecodeError as e:
            raise InvalidInputError("the EncryptedCredential file is not ASCII text") from e
    return value.strip()
