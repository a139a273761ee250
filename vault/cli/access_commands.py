"""``gwvault users|tokens|policy|endpoint|tls|serve``: who may use the
endpoint and what it accepts, where it listens, and serving it."""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_keys.errors import InvalidInputError
from agent_keys.recovery_key import check_passphrase_policy
from agent_keys.secret import Secret
from agent_keys.tls_identity import MAX_PEM_BYTES
from vault.access.accounts import Accounts
from vault.access.endpoint_settings import EndpointSettings, load_endpoint, save_endpoint
from vault.access.grants import AccessGrants
from vault.access.seal_policy import SealPolicy, load_seal_policy, save_seal_policy
from vault.cli.confirmation import confirm_destruction
from vault.cli.input import pin_source, read_private_file, read_public_file, read_secret
from vault.cli.opening import data_dir, open_for_cli
from vault.cli.output import EXIT_OK, print_fields, print_json
from vault.credential_life import parse_retention_days
from vault.credentials import CredentialService
from vault.format.fingerprints import colon_hex_of_b64url
from vault.health.settings import changed_health_settings, load_health_settings, parse_concurrency
from vault.keys.tls import TlsService

_DURATION = re.compile(r"([1-9][0-9]{0,3})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def users_add(args: argparse.Namespace) -> int:
    password = read_secret("password", args.password_file, confirm=True, check=_password_policy)
    with open_for_cli(args) as gateway:
        Accounts(gateway).add_user(args.name, args.role, password)
    print(f"added {args.role} {args.name}")
    return EXIT_OK


def users_list(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        rows = Accounts(gateway).users()
    _print_rows(rows, args.json, "no users", lambda r: f"{r['name']}  {r['role']}")
    return EXIT_OK


def users_remove(args: argparse.Namespace) -> int:
    confirm_destruction(
        args,
        f"Remove the user {args.name}?",
        f"{args.name} can no longer sign in, and their open sessions end now.",
    )
    with open_for_cli(args) as gateway:
        Accounts(gateway).remove_user(args.name)
    print(f"removed {args.name} and ended its sessions")
    return EXIT_OK


def users_set_role(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        previous = Accounts(gateway).set_role(args.name, args.role)
    if previous == args.role:
        print(f"{args.name} is already {args.role}; nothing changed")
    else:
        print(f"{args.name} is now {args.role} (was {previous})")
    return EXIT_OK


def users_passwd(args: argparse.Namespace) -> int:
    password = read_secret("password", args.password_file, confirm=True, check=_password_policy)
    with open_for_cli(args) as gateway:
        Accounts(gateway).set_password(args.name, password)
    print(f"set the password of {args.name} and ended its sessions")
    return EXIT_OK


def _password_policy(password: Secret) -> None:
    # Accounts checks it again; checked here too so that a prompt can ask again.
    check_passphrase_policy(password, "password")


def tokens_create(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        token = AccessGrants(gateway).create_token(args.name, args.role)
    print(f"created {args.role} token {args.name}; it is shown once, store it now:")
    print(token)
    return EXIT_OK


def tokens_list(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        rows = AccessGrants(gateway).tokens()
    _print_rows(rows, args.json, "no tokens", _token_line)
    return EXIT_OK


def _token_line(row: dict[str, object]) -> str:
    state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "live"
    return f"{row['name']}  {row['role']}  {state}"


def tokens_revoke(args: argparse.Namespace) -> int:
    confirm_destruction(
        args,
        f"Revoke the API token {args.name}?",
        f"Programs using {args.name} are refused from now on; its name stays taken.",
    )
    with open_for_cli(args) as gateway:
        AccessGrants(gateway).revoke_token(args.name)
    print(f"revoked token {args.name}")
    return EXIT_OK


def endpoint_show(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        settings = load_endpoint(gateway)
    facts = {"host": settings.host, "port": settings.port, "url": settings.url,
             "allow_remote": settings.allow_remote}  # fmt: skip
    print_json(facts) if args.json else print_fields(facts)
    return EXIT_OK


def endpoint_set(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        current = load_endpoint(gateway)
        settings = EndpointSettings(
            host=args.host or current.host,
            port=args.port or current.port,
            allow_remote=args.allow_remote,
        )
        save_endpoint(gateway, settings)
    print(f"the endpoint will listen on {settings.url} from the next gwvault serve")
    return EXIT_OK


def tls_show(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        facts = TlsService(gateway).show()
    _print_tls_facts(facts, args.json)
    return EXIT_OK


def tls_regenerate(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        facts = TlsService(gateway).regenerate()
    _print_tls_facts(facts, as_json=False)
    return EXIT_OK


def _print_tls_facts(facts: dict[str, Any], as_json: bool) -> None:
    """The endpoint certificate: its SHA-256 as a browser shows it (hex with colons);
    ``--json`` keeps the base64url ``sha256`` beside it."""
    fingerprint = colon_hex_of_b64url(facts["sha256"])
    if as_json:
        print_json({**facts, "fingerprint_sha256": fingerprint})
        return
    shown = {k: v for k, v in facts.items() if k != "sha256"}
    print_fields({**shown, "fingerprint_sha256": fingerprint})


def tls_import(args: argparse.Namespace) -> int:
    chain = read_public_file(Path(args.cert), "certificate", MAX_PEM_BYTES)
    key = read_private_file(Path(args.key), "TLS key")
    with open_for_cli(args) as gateway:
        facts = TlsService(gateway).import_identity(chain, Secret(key))
    _print_tls_facts(facts, as_json=False)
    return EXIT_OK


def policy_show(args: argparse.Namespace) -> int:
    with open_for_cli(args) as gateway:
        seals = load_seal_policy(gateway)
        retention = CredentialService(gateway).retention_days()
        health = load_health_settings(gateway)
    facts = {
        "sealed_max_age_seconds": int(seals.max_age.total_seconds()),
        "credentials_retention_days": retention,
        "health_check_every_seconds": health.every_seconds,
        "health_check_concurrency": health.concurrency,
    }
    print_json(facts) if args.json else print_fields(facts)
    return EXIT_OK


def policy_set(args: argparse.Namespace) -> int:
    health_flags = (args.health_every, args.health_concurrency)
    if (args.sealed_max_age, args.credentials_retention, *health_flags) == (None,) * 4:
        raise InvalidInputError(
            "nothing to set: give --sealed-max-age DURATION, --credentials-retention DAYS,"
            " --health-every DURATION or --health-concurrency N"
        )
    # All checked before anything is written: a bad one changes nothing.
    policy = (
        None if args.sealed_max_age is None else SealPolicy(parse_duration(args.sealed_max_age))
    )
    days = None
    if args.credentials_retention is not None:
        days = parse_retention_days(args.credentials_retention)
    every = parse_duration(args.health_every) if args.health_every is not None else None
    concurrency = (
        parse_concurrency(args.health_concurrency) if health_flags[1] is not None else None
    )
    with open_for_cli(args) as gateway:
        if policy is not None:
            save_seal_policy(gateway, policy)
        if days is not None:
            CredentialService(gateway).set_retention_days(days)
        health = (
            changed_health_settings(gateway, every, concurrency)
            if health_flags != (None, None)
            else None
        )
    if policy is not None:
        print(f"an EncryptedCredential is now accepted up to {args.sealed_max_age} after sealing")
    if days is not None:
        print(f"credentials deleted from now on are kept {days} days before they are purged")
    if health is not None:
        print(f"each credential is now tested every {health.every_seconds} s,"
              f" up to {health.concurrency} at once")  # fmt: skip
    return EXIT_OK


def serve(args: argparse.Namespace) -> int:
    if os.geteuid() == 0 and not args.allow_root:
        # A flaw in the page, the API or a driver would run as root and own the machine.
        raise InvalidInputError(
            "refusing to serve as root: run gwvault serve as its own user (the gwvault user"
            ' of deploy/gwvault.service, README "Install as a service"), or pass --allow-root'
        )
    # The endpoint belongs to the web package, an edge like this one: it is
    # named, not imported, so neither edge depends on the other.
    endpoint = importlib.import_module("web.serve")
    status: int = endpoint.serve_endpoint(
        data_dir(args),
        pin_source(args.pin_file),
        args.host,
        args.port,
        args.allow_remote,
        workers=args.workers,
    )
    return status


def parse_duration(text: str) -> datetime.timedelta:
    match = _DURATION.fullmatch(text)
    if match is None:
        raise InvalidInputError("a duration is a number and s, m, h or d, like 15m")
    return datetime.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _print_rows(
    rows: list[dict[str, Any]], as_json: bool, empty: str, line: Callable[[dict[str, Any]], str]
) -> None:
    if as_json:
        print_json(rows)
    elif not rows:
        print(empty)
    else:
        for row in rows:
            print(line(row))
