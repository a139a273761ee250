"""``gwvault init``, ``status`` and ``keystore show|migrate|trust-module``: the gateway itself.

Each handler opens the vault for one CLI request context, calls the service
layer and prints.  Errors propagate to ``vault.cli.main``, which prints them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent_keys.recovery_key import check_passphrase_policy
from vault.cli.credential_commands import report_verify
from vault.cli.input import pin_source, read_secret
from vault.cli.opening import data_dir, keystore_spec, open_for_cli
from vault.cli.output import EXIT_OK, print_fields, print_json
from vault.context import RequestContext
from vault.credentials import CredentialService
from vault.format.fingerprints import colon_hex_of_b64url
from vault.gateway import Gateway
from vault.keys.keystore_migration import migrate_keystore
from vault.keys.module_trust import trust_module


def init(args: argparse.Namespace) -> int:
    from vault.cli.cluster_commands import store_location

    shared, password = store_location(args) if args.store is not None else (None, None)
    recovery_key = read_secret(
        "recovery key", args.recovery_key_file, confirm=True, check=check_passphrase_policy
    )
    with Gateway.initialize(
        data_dir(args),
        args.name,
        args.key_type,
        recovery_key,
        RequestContext.for_cli(),
        keystore=keystore_spec(args),
        pin=pin_source(args.pin_file),
        shared_store=shared,
        member_name=args.member_name,
        store_password=password,
    ) as gateway:
        status = gateway.status()
    print(f"initialised gateway {status['name']} ({status['gateway_id']}) in {status['data_dir']}")
    print(f"certificate SHA-256 fingerprint {colon_hex_of_b64url(status['cert_thumbprint'])}")
    print(f"(JWE kid of values sealed to it: {status['cert_thumbprint']})")
    print("keep the recovery key safe: it is not stored, and only it can move this gateway")
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    from vault.keys.backup_state import backup_view, unknown_backup_view
    from vault.keys.certificates import CertificateService

    with open_for_cli(args) as gateway:
        facts = gateway.status()
        warning = CertificateService(gateway).expiry_warning()
        # The reminder needs the audit key: a token's PIN is asked for by no
        # status, so without --pin-file a PKCS#11 vault's state is unknown.
        if gateway.keystore.kind == "file" or args.pin_file:
            facts["backup"] = backup_view(gateway)
        else:
            facts["backup"] = unknown_backup_view("give --pin-file to check the backups")
    # One digest, two spellings: hex with colons to compare with a browser or
    # openssl, base64url as the JWE kid that sealed values name.
    fingerprint = colon_hex_of_b64url(facts["cert_thumbprint"])
    if args.json:
        print_json({**facts, "cert_fingerprint_sha256": fingerprint})
    else:
        print_fields(_people_facts(facts, fingerprint))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    for sink in facts["audit_sinks"]:
        if sink["failing_since"]:
            print(
                f"warning: audit sink {sink['name']} ({sink['policy']}) has failed since"
                f" {sink['failing_since']}, {sink['behind']} entries behind: {sink['last_error']}",
                file=sys.stderr,
            )
    if facts["backup"]["reminder"]:
        print(f"warning: {facts['backup']['reminder']}", file=sys.stderr)
    return EXIT_OK


def _people_facts(facts: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """``status`` for a person: the fingerprint in hex, the kid labelled as such,
    each audit sink on a line."""
    shown: dict[str, Any] = {}
    for key, value in facts.items():
        if key == "cert_thumbprint":
            shown["cert_fingerprint_sha256"] = fingerprint
            shown["cert_jwe_kid"] = value
        elif key == "audit_sinks":
            shown[key] = "; ".join(sink_line(sink) for sink in value) or "none"
        elif key == "backup":
            shown["backup"] = _backup_line(value)
        else:
            shown[key] = value
    return shown


def sink_line(sink: dict[str, Any]) -> str:
    """One audit sink's state in words (``status``, the overview page)."""
    state = "up to date" if not sink["behind"] else f"{sink['behind']} entries behind"
    return f"{sink['name']} ({sink['policy']}, {sink['destination']}): {state}"


def _backup_line(view: dict[str, Any]) -> str:
    """The backup state in one line: when the newest backup was made, or why one is due."""
    if view["needed"] is None:
        return f"unknown ({view['unknown']})"
    last = view["last_backup"]
    if not view["needed"]:
        return f"backed up ({last['action']} at {last['at']})"
    return "due (see the warning below)"


def keystore_show(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        facts = {
            "keystore": gateway.keystore.kind,
            "binding_file": str(gateway.data_dir.binding_path.resolve()),
            **gateway.keystore.describe(),
        }
    print_json(facts) if args.json else print_fields(facts)
    return EXIT_OK


def keystore_trust_module(args: argparse.Namespace) -> int:
    pin = pin_source(args.pin_file)
    with Gateway.open(data_dir(args), RequestContext.for_cli(), pin) as gateway:
        result = trust_module(gateway, pin, args.pkcs11_module, args.token_label, args.key_label)
    if not result.changed:
        print(f"the vault already trusts {result.module} (sha256 {result.module_sha256})")
        return EXIT_OK
    print(f"the vault now trusts the PKCS#11 module {result.module}")
    print(f"sha256 {result.module_sha256} (was {result.previous_sha256 or 'not recorded'})")
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
    return report_verify(report)
