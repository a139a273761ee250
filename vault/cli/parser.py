"""The ``gwvault`` command line: every command, flag and help text.

Secrets are never flags: every secret has a ``--...-file`` flag and otherwise
comes from a pipe or a prompt (``vault.cli.input``).
"""

from __future__ import annotations

import argparse

from agent_keys.key_types import KEY_TYPES
from vault.access.policy import ROLES
from vault.cli import (
    audit_commands,
    cert_commands,
    cluster_commands,
    destination_commands,
    doctor_commands,
    health_commands,
    key_commands,
    life_flags,
    metrics_commands,
    notify_commands,
    proxy_commands,
    recovery_commands,
    store_commands,
)
from vault.cli.confirmation import add_yes_flag
from vault.cli.connection_strings import add_connection_string_flags
from vault.cli.flags import Commands, OneLineParser, add_keystore_flags, add_target_flags
from vault.cli.global_flags import add_global_flags, repeat_after_commands
from vault.format.data_source import AUTH_TYPES


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="gwvault",
        description="Credential vault of an on-premises data gateway.",
    )
    add_global_flags(parser)  # --data-dir, --pin-file: also after the command
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_init(commands)
    status = commands.add_parser("status", help="show the gateway's identity and vault state")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _add_encrypt_value(commands)
    _add_credentials(commands)
    _add_keystore(commands)
    _add_web_access(commands)
    _add_policy(commands)
    _add_endpoint(commands)
    # Key lifecycle commands live beside their handlers.
    for module in (
        cert_commands, key_commands, recovery_commands, audit_commands, destination_commands,
        cluster_commands, store_commands, notify_commands, health_commands, proxy_commands,
        doctor_commands,
        metrics_commands,
    ):  # fmt: skip
        module.add_parsers(commands)
    repeat_after_commands(parser)  # last: every command's parser exists now
    return parser


def _add_init(commands: Commands) -> None:
    init = commands.add_parser("init", help="create the gateway's keys and an empty vault")
    init.add_argument("--name", required=True, help="gateway name (the certificate CN)")
    init.add_argument("--key-type", choices=KEY_TYPES, default="ec-p256")
    add_keystore_flags(init, "--keystore", default="file")
    init.add_argument(
        "--recovery-key-file",
        metavar="F",
        help="file (mode 0600) with the recovery key; else prompted twice, or read from a pipe",
    )
    cluster_commands.add_store_flags(init)
    init.add_argument(
        "--member-name", help="with --store: this first member's name (default: the host name)"
    )


def _add_encrypt_value(commands: Commands) -> None:
    encrypt = commands.add_parser(
        "encrypt-value",
        help="seal a credential for a gateway from its certificate (needs no vault)",
    )
    encrypt.add_argument("--cert", required=True, metavar="FILE.pem", help="gateway certificate")
    encrypt.add_argument("--datasource", "--name", dest="datasource", required=True, metavar="NAME")
    add_target_flags(encrypt, "the value opens only for this target", required=False)
    _add_login_flags(encrypt)
    add_connection_string_flags(encrypt, sealing=True)


def _add_login_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--auth", choices=AUTH_TYPES, help="default: basic (sqlite: anonymous)")
    parser.add_argument("--username", metavar="U")
    parser.add_argument(
        "--secret-file", metavar="F", help="file (mode 0600) with the secret; else pipe or prompt"
    )


def _add_credentials(commands: Commands) -> None:
    credentials = commands.add_parser("credentials", help="stored data-source credentials")
    actions = credentials.add_subparsers(
        dest="credentials_command", required=True, metavar="ACTION"
    )
    put = actions.add_parser("put", help="store or update a credential")
    put.add_argument("name", metavar="NAME", help="data-source name")
    add_target_flags(put, "a sealed value must be sealed for this same target", required=False)
    _add_login_flags(put)
    add_connection_string_flags(put, sealing=False)
    put.add_argument(
        "--encrypted-credential",
        metavar="VALUE|@FILE",
        help="an EncryptedCredential sealed for NAME (from encrypt-value or the web page);"
        " it carries auth, user name and secret",
    )
    life_flags.add_life_flags(put)
    listing = actions.add_parser("list", help="list credentials (metadata only)")
    listing.add_argument(
        "--deleted",
        action="store_true",
        help="list the deleted ones instead (restorable until purge_after)",
    )
    listing.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="show one credential's metadata")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true")
    _add_credential_life(actions)
    test = actions.add_parser("test", help="connect to the data source with the stored credential")
    test.add_argument("name", metavar="NAME", nargs="?")
    test.add_argument(
        "--all", action="store_true",
        help="test every enabled credential now, as many at once as the scheduler does;"
        " exit 1 if any is not ok",
    )  # fmt: skip
    test.add_argument("--json", action="store_true", help="with --all: machine-readable output")
    health_commands.add_credential_parsers(actions)
    verify = actions.add_parser("verify", help="check that stored credentials open")
    verify.add_argument("name", metavar="NAME", nargs="?")
    life_flags.add_parsers(actions)


def _add_credential_life(actions: Commands) -> None:
    """A credential's life: delete (soft), restore, purge, disable, enable."""
    for action, help_text in (
        ("delete", "delete a credential: it opens for nobody and is kept for the retention"
         " window (gwvault policy show), restorable, then purged"),
        ("restore", "bring a deleted credential back as it was"),
        ("purge", "destroy a deleted credential's data key now: gone for good (admin)"),
        ("disable", "stop all use and tests of a credential, without deleting it"),
        ("enable", "let a disabled credential be used and tested again"),
    ):  # fmt: skip
        parser = actions.add_parser(action, help=help_text)
        parser.add_argument("name", metavar="NAME")
        parser.add_argument("--json", action="store_true")
        if action in ("delete", "purge"):
            add_yes_flag(parser)


def _add_keystore(commands: Commands) -> None:
    keystore = commands.add_parser("keystore", help="the keystore that unlocks the vault")
    actions = keystore.add_subparsers(dest="keystore_command", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show", help="which keystore, and where (never loads a PKCS#11 module)"
    )
    show.add_argument("--json", action="store_true")
    migrate = actions.add_parser(
        "migrate", help="rebind the master key to another keystore; credentials are untouched"
    )
    add_keystore_flags(migrate, "--to", default=None)
    migrate.add_argument(
        "--recovery-key-file",
        metavar="F",
        help="unlock with the recovery key from F (for when the current keystore is lost)",
    )
    migrate.add_argument(
        "--with-recovery-key",
        action="store_true",
        help="unlock with the recovery key, prompted (for when the current keystore is lost)",
    )
    trust = actions.add_parser(
        "trust-module",
        help="accept the PKCS#11 module at its current bytes (after an upgrade), or name the"
        " module of a vault that has no binding file",
    )
    trust.add_argument(
        "--pkcs11-module", metavar="PATH", help="the module to bind (default: the bound one)"
    )
    trust.add_argument("--token-label", metavar="LABEL", help="default: the bound one")
    trust.add_argument("--key-label", metavar="L", help="default: the bound one")


def _add_web_access(commands: Commands) -> None:
    users = commands.add_parser("users", help="local accounts of the web page")
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a user (password prompted, piped or --password-file)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-file", metavar="F")
    actions.add_parser("list", help="list users").add_argument("--json", action="store_true")
    remove = actions.add_parser(
        "remove", help="remove a user and end its sessions (never the last admin)"
    )
    remove.add_argument("name")
    add_yes_flag(remove)
    set_role = actions.add_parser(
        "set-role", help="give a user another role (never the last admin's)"
    )
    set_role.add_argument("name", metavar="NAME")
    set_role.add_argument("role", metavar="ROLE", choices=ROLES, help=" | ".join(ROLES))
    passwd = actions.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument("--password-file", metavar="F")

    tokens = commands.add_parser("tokens", help="API tokens (stored hashed)")
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token; printed once, on the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    actions.add_parser("list", help="list tokens (never the token)").add_argument(
        "--json", action="store_true"
    )
    revoke = actions.add_parser("revoke", help="revoke a token")
    revoke.add_argument("name")
    add_yes_flag(revoke)

    link = commands.add_parser("entry-link", help="single-use links to enter one credential")
    actions = link.add_subparsers(dest="entry_link_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a link for one data source, valid up to an hour")
    create.add_argument("--datasource", required=True, metavar="NAME")
    add_target_flags(create, "the link's holder may seal for and test this target only")
    create.add_argument(
        "--expires", default="15m", metavar="DURATION", help="e.g. 15m, 1h (max 1h)"
    )
    create.add_argument(
        "--url-base",
        metavar="URL",
        help="the https://HOST[:PORT] people reach the page at (default: where gwvault serve"
        " listens, else the endpoint settings; required in a cluster)",
    )
    actions.add_parser("list", help="list open links by id (never a secret)").add_argument(
        "--json", action="store_true"
    )
    revoke = actions.add_parser("revoke", help="close an open link at once")
    revoke.add_argument("id", metavar="ID", help="the link's id, as entry-link list shows it")
    add_yes_flag(revoke)


def _add_policy(commands: Commands) -> None:
    policy = commands.add_parser("policy", help="what the vault accepts from callers")
    actions = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    actions.add_parser("show", help="show the policy").add_argument("--json", action="store_true")
    set_ = actions.add_parser("set", help="change it")
    set_.add_argument(
        "--sealed-max-age",
        metavar="DURATION",
        help="how long after sealing an EncryptedCredential is accepted (5m-7d; default 4h)",
    )
    set_.add_argument(
        "--credentials-retention",
        metavar="DAYS",
        help="how long a deleted credential is kept, restorable, before it is purged"
        " (7-90 days; default 30; applies to deletes from now on)",
    )
    set_.add_argument(
        "--health-every",
        metavar="DURATION",
        help="how often each credential is tested by the scheduler (5m-30d; default 1d)",
    )
    set_.add_argument(
        "--health-concurrency",
        metavar="N",
        help="how many scheduled tests run at once (1-64; default 4)",
    )


def _add_endpoint(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="serve the HTTPS page and API")
    serve.add_argument("--host", help="address to bind (default: the endpoint setting, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: the endpoint setting, 8050)")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding to an address other than loopback",
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes (default: one per core); each serves many connections",
    )
    serve.add_argument(
        "--allow-root",
        action="store_true",
        help="serve even as root (refused by default: run it as its own user, README"
        ' "Install as a service")',
    )
    endpoint = commands.add_parser("endpoint", help="the endpoint's host and port settings")
    actions = endpoint.add_subparsers(dest="endpoint_command", required=True, metavar="ACTION")
    actions.add_parser("show", help="show the settings").add_argument("--json", action="store_true")
    set_ = actions.add_parser("set", help="change the host or port (the old 'change HTTPS port')")
    set_.add_argument("--host")
    set_.add_argument("--port", type=int)
    set_.add_argument("--allow-remote", action="store_true")

    tls = commands.add_parser("tls", help="the endpoint's TLS certificate")
    actions = tls.add_subparsers(dest="tls_command", required=True, metavar="ACTION")
    actions.add_parser("show", help="show it").add_argument("--json", action="store_true")
    actions.add_parser("regenerate", help="a new self-signed certificate")
    imp = actions.add_parser("import", help="adopt a certificate chain and key (PEM)")
    imp.add_argument("--cert", required=True, metavar="CHAIN.pem")
    imp.add_argument(
        "--key", required=True, metavar="KEY.pem", help="unencrypted PEM key, mode 0600"
    )
