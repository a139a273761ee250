"""Many ``gwvault credentials put`` in one process, until it is killed.

``python -m tests.security.put_loop DATA_DIR PREFIX COUNT SECRET_FILE`` runs the
CLI's own ``main`` once per credential (each put opens the vault, writes in
one transaction with its audit entry, and closes, as the command does) and
prints each name once its put returned: every printed name was committed
before a SIGKILL.  The interpreter starts once, so nearly all of its life is
writing, and a kill at a random instant lands mid-put.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

from vault.cli.main import main


def put_names(data_dir: Path, prefix: str, count: int, secret_file: Path) -> int:
    for i in range(count):
        name = f"{prefix}-{i:05d}"
        put = ["--data-dir", str(data_dir), "credentials", "put", name, "--type", "mysql",
               "--server", "db", "--username", "u", "--secret-file", str(secret_file)]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):  # the command's own "created ..." line
            code = main(put)
        if code:
            return code
        print(name, flush=True)
    return 0


if __name__ == "__main__":
    directory, prefix, count, secret = sys.argv[1:5]
    sys.exit(put_names(Path(directory), prefix, int(count), Path(secret)))
