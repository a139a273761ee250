"""``python -m vault``: the same as the ``gwvault`` command."""

import sys

from vault.cli.main import main

sys.exit(main())
