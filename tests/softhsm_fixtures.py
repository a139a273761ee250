"""SoftHSM2 as the PKCS#11 token of the tests: a private token directory per session.

SoftHSM2 reads its configuration (where the tokens live) from the file named by
``SOFTHSM2_CONF`` when the module is first loaded, so the session points that
variable at a temporary directory before any test loads the module, and every
subprocess inherits it.  Token PINs are random per session.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_keys.secret import Secret
from tests.service_fixtures import require_service

MODULE_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
)
MAIN_TOKEN = "gwvault-test"


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 installation with a private token directory."""

    module: str
    conf: Path
    pin: str

    def new_token(self, label: str) -> str:
        """Initialise another token (same PIN) and return its label."""
        # softhsm2-util takes PINs only as arguments; these are throwaway test
        # PINs in a private temp dir, never a product secret.
        init = ["softhsm2-util", "--init-token", "--free", "--label", label]
        subprocess.run(
            [*init, "--pin", self.pin, "--so-pin", self.pin],
            check=True,
            capture_output=True,
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
        )
        return label

    def pin_source(self) -> Secret:
        return Secret.from_text(self.pin)

    def cli_env(self) -> dict[str, str]:
        """What a gwvault subprocess needs to use the token."""
        return {"SOFTHSM2_CONF": str(self.conf), "GWVAULT_PKCS11_PIN": self.pin}


def write_conf(conf: Path, token_dir: Path, extra: str = "") -> None:
    settings = [f"directories.tokendir = {token_dir}", "objectstore.backend = file"]
    conf.write_text("\n".join([*settings, "log.level = ERROR", extra]) + "\n")


@pytest.fixture(scope="session")
def softhsm() -> Iterator[SoftHsm]:
    module = next((path for path in MODULE_PATHS if os.path.exists(path)), None)
    if module is None or shutil.which("softhsm2-util") is None:
        require_service("SoftHSM2 is not installed (Debian package softhsm2)")
    root = Path(tempfile.mkdtemp(prefix="gwvault-softhsm-"))
    (root / "tokens").mkdir()
    write_conf(root / "softhsm2.conf", root / "tokens")
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(root / "softhsm2.conf")
    hsm = SoftHsm(module=module, conf=root / "softhsm2.conf", pin=secrets.token_hex(8))
    hsm.new_token(MAIN_TOKEN)
    try:
        yield hsm
    finally:
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before
        shutil.rmtree(root, ignore_errors=True)
