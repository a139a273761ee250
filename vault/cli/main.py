"""``gwvault``: the command-line entry point.

``exit_code_for`` is the one place errors map to exit codes (``vault.cli.output``
names them); a handler's error is printed as one line, never a traceback and
never a secret.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable, Sequence

from agent_keys.errors import InvalidInputError, VaultError
from agent_keys.process_hardening import make_undumpable
from vault.cli.global_flags import settle_global_flags
from vault.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, print_error
from vault.cli.parser import build_parser


def exit_code_for(error: VaultError) -> int:
    """The exit code of a failed command (README "Exit codes").

    2: what the caller gave is wrong as given: a flag, a typed or piped value,
    or a file it named (missing, unreadable, wrong mode or owner, not what it
    should hold, an output path that exists); ``InvalidInputError``, raised
    for all of those by ``vault.cli.input`` and the service's validation.
    Usage errors (argparse) exit 2 too, in ``flags.OneLineParser``.
    1: a valid request that could not be carried out: not found, a conflict
    with the vault's state, refused by the vault, a check that ran and
    failed, the vault or a data source unreachable or damaged.
    """
    return EXIT_USAGE if isinstance(error, InvalidInputError) else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``gwvault`` command and return its exit code."""
    # Whatever this process creates (data dir, key file, exports) is private
    # unless a command says otherwise.
    os.umask(0o077)
    # Any command may unwrap the GMK or hold a secret: no core file of it, no ptrace
    # by the same user (T-PROC-1, T-PROC-3).  The core limit is left alone here, as
    # main() also runs inside test processes; `serve` lowers it too.
    make_undumpable()
    parser = build_parser()
    args = parser.parse_args(argv)
    settle_global_flags(parser, args)
    try:
        return _handler(args)(args)
    except VaultError as e:
        print_error(str(e))
        return exit_code_for(e)
    except KeyboardInterrupt:
        print_error("interrupted; nothing was changed")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as e:  # the last line of defence against a traceback
        # A bug, not a user error.  Only the type is shown: an unexpected
        # exception's message might carry data we never meant to print.
        if os.environ.get("GWVAULT_DEBUG") == "1":
            raise
        print_error(f"internal error ({type(e).__name__}); rerun with GWVAULT_DEBUG=1 to see where")
        return EXIT_FAILED


# Where each command's handler lives.  A module is imported only for the
# command being run, so `--help` loads none of the service layer it needs.
_HANDLER_MODULES = {
    "init": "vault.cli.gateway_commands",
    "status": "vault.cli.gateway_commands",
    "keystore": "vault.cli.gateway_commands",
    "encrypt-value": "vault.cli.credential_commands",
    "credentials": "vault.cli.credential_commands",
    "users": "vault.cli.access_commands",
    "tokens": "vault.cli.access_commands",
    "entry-link": "vault.cli.entry_link_commands",
    "policy": "vault.cli.access_commands",
    "endpoint": "vault.cli.access_commands",
    "tls": "vault.cli.access_commands",
    "serve": "vault.cli.access_commands",
    "cert": "vault.cli.cert_commands",
    "rewrap-value": "vault.cli.cert_commands",
    "keys": "vault.cli.key_commands",
    "recovery": "vault.cli.recovery_commands",
    "restore": "vault.cli.recovery_commands",
    "audit": "vault.cli.audit_commands",
    "test-policy": "vault.cli.destination_commands",
    "cluster": "vault.cli.cluster_commands",
    "store": "vault.cli.store_commands",
    "notify": "vault.cli.notify_commands",
    "proxy": "vault.cli.proxy_commands",
    "scheduler": "vault.cli.health_commands",
    "doctor": "vault.cli.doctor_commands",
    "diagnostics": "vault.cli.doctor_commands",
    "metrics": "vault.cli.metrics_commands",
}


def _handler(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    command: str = args.command
    sub = getattr(args, f"{command.replace('-', '_')}_command", None)
    name = f"{command}_{sub}" if sub else command
    module = importlib.import_module(_HANDLER_MODULES[command])
    handler: Callable[[argparse.Namespace], int] = getattr(module, name.replace("-", "_"))
    return handler
