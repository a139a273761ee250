"""``python -m vault``: the same as the ``gwvault`` command."""

import sys

from vault.cli import main

sys.exit(main())
