"""What the CLI prints and the exit codes it returns.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or input, 130
interrupted.  Errors are one line on stderr (``gwvault: error: ...``), never a
traceback and never a secret.
"""

from __future__ import annotations

import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def print_fields(fields: dict[str, Any]) -> None:
    width = max(len(key) for key in fields)
    for key, value in fields.items():
        print(f"{key:<{width}}  {'' if value is None else value}")


def report_failure(message: str) -> int:
    """Say on stderr why a command that ran did not succeed; returns exit code 1."""
    print_error(message)
    return EXIT_FAILED


def print_error(message: str) -> None:
    # One line: a message with a newline (a driver's) must not forge extra lines.
    sys.stderr.write(f"gwvault: error: {' '.join(message.split())}\n")
