"""How the CLI reads secrets: a prompt, standard input, or a private file.

Never a command-line argument (other local users see those in ``ps``).  A
secret file must be readable by its owner alone, like a key file.

Every problem with a file the caller named (missing, unreadable, wrong mode,
wrong owner, too large, an output path that exists) is ``InvalidInputError``:
the caller's input, exit 2 (``vault.cli.main.exit_code_for``).
"""

from __future__ import annotations

import functools
import getpass
import os
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from agent_keys.errors import InvalidInputError
from agent_keys.keystore import PinSource
from agent_keys.private_files import create_private_file
from agent_keys.secret import Secret
from vault.keys.keystore_binding import PIN_ENV, no_pin

MAX_INPUT_BYTES = 65536
# A person at a prompt is asked again after a refused value, this often at most.
PROMPT_ATTEMPTS = 5


def read_secret(
    what: str,
    file: str | None,
    *,
    confirm: bool = False,
    check: Callable[[Secret], None] | None = None,
) -> Secret:
    """Read one secret from ``file``, else from a pipe on stdin, else by prompting.

    ``what`` names the secret in prompts and errors (``"recovery key"``).  With
    ``confirm``, a prompted secret is asked for twice.  ``check`` (a strength
    policy) raises ``InvalidInputError`` for a value it refuses: at a prompt the
    person is told why and asked again (up to ``PROMPT_ATTEMPTS`` times); a
    file or a pipe cannot be asked again, so it fails at once.  Raises
    ``InvalidInputError`` for an empty, oversized or refused secret.
    """
    if file is None and sys.stdin.isatty():
        return _prompt_until_accepted(what, confirm, check)
    if file is not None:
        raw = read_private_file(Path(file), what)
    else:
        raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    secret = _secret_of(what, raw)
    if check is not None:
        check(secret)
    return secret


def _prompt_until_accepted(
    what: str, confirm: bool, check: Callable[[Secret], None] | None
) -> Secret:
    attempts = 1
    while True:
        try:
            secret = _secret_of(what, _prompt(what, confirm).encode("utf-8"))
            if check is not None:
                check(secret)
            return secret
        except InvalidInputError as refused:
            if attempts >= PROMPT_ATTEMPTS:
                raise
            attempts += 1
            # Said on the terminal, one line, never the value itself.
            sys.stderr.write(f"gwvault: {refused}; try again\n")


def _secret_of(what: str, raw: bytes) -> Secret:
    value = _strip_one_newline(raw)
    if len(raw) > MAX_INPUT_BYTES:
        raise InvalidInputError(f"the {what} is longer than {MAX_INPUT_BYTES} bytes")
    if not value:
        raise InvalidInputError(f"the {what} is empty")
    return Secret(value)


def pin_source(pin_file: str | None) -> PinSource:
    """The PKCS#11 PIN for one command: ``--pin-file``, else the environment, else a prompt.

    Asked only when the token is used, and at most once per command.
    """

    @functools.cache
    def pin() -> Secret:
        if pin_file is not None:
            return read_secret("token PIN", pin_file)
        from_env = os.environ.get(PIN_ENV)
        if from_env:
            return Secret.from_text(from_env)
        if sys.stdin.isatty():
            return read_secret("token PIN", None)
        return no_pin()

    return pin


def read_private_file(path: Path, what: str) -> bytes:
    """Read a file holding a secret, refusing one that group or others can read."""
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise InvalidInputError(f"{path} is not a regular file")
            if mode & 0o077:
                raise InvalidInputError(
                    f"the {what} file {path} is readable by group or others; run: chmod 600 {path}"
                )
            return f.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError as e:
        raise InvalidInputError(f"the {what} file {path} does not exist") from e
    except (IsADirectoryError, PermissionError) as e:
        raise InvalidInputError(f"cannot read the {what} file {path}: {e.strerror}") from e


def write_private_output(path: Path, data: bytes | Iterable[bytes]) -> Path:
    """Write a command's private output file (a bundle, a PKCS#12): new, 0600."""
    try:
        create_private_file(path, data)
    except FileExistsError as e:
        raise InvalidInputError(f"{path} exists; not overwriting it") from e
    except OSError as e:
        raise InvalidInputError(f"cannot write {path}: {e.strerror}") from e
    return path


def read_public_file(path: Path, what: str, limit: int) -> bytes:
    """Read a small non-secret input file (a certificate, an EncryptedCredential)."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise InvalidInputError(f"cannot read the {what} file {path}: {e.strerror}") from e
    if len(data) > limit:
        raise InvalidInputError(f"the {what} file {path} is larger than {limit} bytes")
    return data


def read_trusted_file(path: Path, what: str, limit: int) -> bytes:
    """Read a small file whose content the vault will trust (a CA certificate).

    Like the data dir: refused unless it is a regular file that no group or
    other user can write and that root or the caller owns, since whoever can
    write it chooses what the vault trusts.
    """
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise InvalidInputError(f"the {what} file {path} is not a regular file")
            if st.st_mode & 0o022:
                raise InvalidInputError(
                    f"the {what} file {path} is writable by group or others; run: chmod go-w {path}"
                )
            if st.st_uid not in (0, os.geteuid()):
                raise InvalidInputError(f"the {what} file {path} belongs to another user")
            data = f.read(limit + 1)
    except OSError as e:
        raise InvalidInputError(f"cannot read the {what} file {path}: {e.strerror}") from e
    if len(data) > limit:
        raise InvalidInputError(f"the {what} file {path} is larger than {limit} bytes")
    return data


def _prompt(what: str, confirm: bool) -> str:
    first = getpass.getpass(f"{what[:1].upper()}{what[1:]}: ")
    if confirm and getpass.getpass(f"Repeat the {what}: ") != first:
        raise InvalidInputError(f"the two {what} entries differ; nothing was changed")
    return first


def _strip_one_newline(raw: bytes) -> bytes:
    # Files and pipes end with a newline that is not part of the secret; other
    # whitespace is, so strip only one line ending.
    for ending in (b"\r\n", b"\n"):
        if raw.endswith(ending):
            return raw[: -len(ending)]
    return raw
