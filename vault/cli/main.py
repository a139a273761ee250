"""``gwvault``: the command-line entry point.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or input.  Errors
are one line on stderr (``gwvault: error: ...``), never a traceback and never
a secret; ``exit_code_for`` is the one place errors map to exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent_keys.errors import InvalidInputError, VaultError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def exit_code_for(error: VaultError) -> int:
    """The exit code of a failed command: 2 for the caller's input, else 1."""
    return EXIT_USAGE if isinstance(error, InvalidInputError) else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``gwvault`` command and return its exit code."""
    # Whatever this process creates (data dir, key file, exports) is private
    # unless a command says otherwise.
    os.umask(0o077)
    from vault.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    try:
        return _handler(args)(args)
    except VaultError as e:
        _error(str(e))
        return exit_code_for(e)
    except KeyboardInterrupt:
        _error("interrupted; nothing was changed")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as e:  # the last line of defence against a traceback
        # A bug, not a user error.  Only the type is shown: an unexpected
        # exception's message might carry data we never meant to print.
        if os.environ.get("GWVAULT_DEBUG") == "1":
            raise
        _error(f"internal error ({type(e).__name__}); rerun with GWVAULT_DEBUG=1 to see where")
        return EXIT_FAILED


# Where each command's handler lives.  `serve` is in web: the CLI is the
# composition root that starts the endpoint, so it names the module by string
# and the vault package never imports web.
_HANDLER_MODULES = {
    "users": "vault.cli.access_commands",
    "tokens": "vault.cli.access_commands",
    "entry-link": "vault.cli.access_commands",
    "endpoint": "vault.cli.access_commands",
    "tls": "vault.cli.access_commands",
    "serve": "web.serve",
    "cert": "vault.cli.cert_commands",
    "rewrap-value": "vault.cli.cert_commands",
    "keys": "vault.cli.key_commands",
    "recovery": "vault.cli.recovery_commands",
    "restore": "vault.cli.recovery_commands",
    "audit": "vault.cli.audit_commands",
}


def _handler(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    command: str = args.command
    sub = getattr(args, f"{command.replace('-', '_')}_command", None)
    name = f"{command}_{sub}" if sub else command
    module = importlib.import_module(_HANDLER_MODULES.get(command, "vault.cli.gateway_commands"))
    handler: Callable[[argparse.Namespace], int] = getattr(module, name.replace("-", "_"))
    return handler


def data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def print_fields(fields: dict[str, Any]) -> None:
    width = max(len(key) for key in fields)
    for key, value in fields.items():
        print(f"{key:<{width}}  {'' if value is None else value}")


def report_failure(message: str) -> int:
    """Say on stderr why a command that ran did not succeed; returns exit code 1."""
    _error(message)
    return EXIT_FAILED


def _error(message: str) -> None:
    # One line: a message with a newline (a driver's) must not forge extra lines.
    sys.stderr.write(f"gwvault: error: {' '.join(message.split())}\n")
