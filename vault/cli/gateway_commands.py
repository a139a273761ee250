"""One function per ``gwvault`` command: parse nothing, print results, return the exit code.

Each handler opens the vault for one CLI request context, calls the service
layer and prints.  Errors propagate to ``vault.cli.main.main``, which prints them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import MAX_CERT_PEM_BYTES, GatewayCertificate
from agent_keys.secret import Secret
from vault.cli.input import pin_source, read_public_file, read_secret
from vault.cli.main import EXIT_OK, data_dir, print_fields, print_json, report_failure
from vault.context import RequestContext
from vault.credentials import CredentialService, VerifyReport
from vault.format.data_source import DataSource, parse_auth_type, parse_data_source_type
from vault.format.encrypted_credential import MAX_TOKEN_CHARS, CredentialPayload, seal_credential
from vault.gateway import Gateway
from vault.keys.keystore_binding import KeystoreSpec
from vault.keys.keystore_migration import migrate_keystore
from vault.names import check_datasource_name


def init(args: argparse.Namespace) -> int:
    recovery_key = read_secret("recovery key", args.recovery_key_file, confirm=True)
    with Gateway.initialize(
        data_dir(args),
        args.name,
        args.key_type,
        recovery_key,
        RequestContext.for_cli(),
        keystore=keystore_spec(args),
        pin=pin_source(args.pin_file),
    ) as gateway:
        status = gateway.status()
    print(f"initialised gateway {status['name']} ({status['gateway_id']}) in {status['data_dir']}")
    print(f"certificate thumbprint {status['cert_thumbprint']}")
    print("keep the recovery key safe: it is not stored, and only it can move this gateway")
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    from vault.keys.certificates import CertificateService

    with open_for_cli(args) as gateway:
        facts = gateway.status()
        warning = CertificateService(gateway).expiry_warning()
    print_json(facts) if args.json else print_fields(facts)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def encrypt_value(args: argparse.Namespace) -> int:
    pem = read_public_file(Path(args.cert), "certificate", MAX_CERT_PEM_BYTES)
    certificate = GatewayCertificate.from_pem(pem)
    datasource = check_datasource_name(args.datasource)
    payload = _payload_from_flags(args)
    context = RequestContext.for_cli()
    issued_at = int(context.clock().timestamp())
    print(seal_credential(certificate, datasource, payload, issued_at, context.random))
    return EXIT_OK


def credentials_put(args: argparse.Namespace) -> int:
    source = DataSource(
        type=parse_data_source_type(args.type), server=args.server, database=args.database
    )
    with open_for_cli(args) as gateway:
        service = CredentialService(gateway)
        if args.encrypted_credential is not None:
            if args.auth or args.username or args.secret_file:
                raise InvalidInputError(
                    "--encrypted-credential carries auth, user name and secret;"
                    " drop --auth, --username and --secret-file"
                )
            result = service.put_sealed(args.name, source, _token(args.encrypted_credential))
        else:
            result = service.put(args.name, source, _payload_from_flags(args))
    verb = "created" if result.created else "updated"
    print(f"{verb} credential {args.name} (version {result.record.binding.version})")
    return EXIT_OK


def credentials_list(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        rows = [record.metadata() for record in CredentialService(gateway).list()]
    if args.json:
        print_json(rows)
    elif not rows:
        print("no credentials")
    else:
        for row in rows:
            database = f"/{row['database']}" if row["database"] else ""
            user = f" as {row['username']}" if row["username"] else ""
            print(f"{row['name']}  {row['type']}  {row['server']}{database}  {row['auth']}{user}")
    return EXIT_OK


def credentials_show(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        row = CredentialService(gateway).get(args.name).metadata()
    print_json(row) if args.json else print_fields(row)
    return EXIT_OK


def credentials_delete(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        CredentialService(gateway).delete(args.name)
    print(f"deleted credential {args.name} and destroyed its data key")
    return EXIT_OK


def credentials_test(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        result = CredentialService(gateway).test(args.name)
    if not result.ok:
        return report_failure(f"connection test of {args.name} failed: {result.message}")
    print(result.message)
    return EXIT_OK


def credentials_verify(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        report = CredentialService(gateway).verify(args.name)
    return _report_verify(report)


def _report_verify(report: VerifyReport) -> int:
    total = len(report.opened) + len(report.failed)
    print(f"{len(report.opened)} of {total} credentials open")
    if report.failed:
        return report_failure(f"these credentials do not open: {', '.join(report.failed)}")
    return EXIT_OK


def keystore_show(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        facts = {"keystore": gateway.keystore.kind, **gateway.keystore.describe()}
    print_json(facts) if args.json else print_fields(facts)
    return EXIT_OK


def keystore_migrate(args: argparse.Namespace) -> int:
    target = keystore_spec(args)
    recovery_key = None
    if args.recovery_key_file or args.with_recovery_key:
        recovery_key = read_secret("recovery key", args.recovery_key_file)
    pin = pin_source(args.pin_file)  # one prompt serves the old and the new token
    with Gateway.open(data_dir(args), RequestContext.for_cli(), pin) as gateway:
        result = migrate_keystore(gateway, target, pin, recovery_key)
        report = CredentialService(gateway).verify()
    print(f"the vault is now bound to the {result.to_kind} keystore", end=" ")
    print(f"(unlocked with the {result.unlocked_with}); {result.old_binding}")
    return _report_verify(report)


def open_for_cli(args: argparse.Namespace) -> Gateway:
    """The vault of ``--data-dir``, for the local user, asking for a PIN only if needed."""
    return Gateway.open(data_dir(args), RequestContext.for_cli(), pin_source(args.pin_file))


def keystore_spec(args: argparse.Namespace) -> KeystoreSpec:
    return KeystoreSpec(
        kind=args.keystore_kind,
        pkcs11_module=args.pkcs11_module,
        token_label=args.token_label,
        key_label=args.key_label,
    )


def _payload_from_flags(args: argparse.Namespace) -> CredentialPayload:
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
