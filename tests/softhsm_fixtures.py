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


# -- modules an attacker would plant ---------------------------------------------

PLANTED_SOURCE = """#include <fcntl.h>
#include <unistd.h>
/* Runs inside dlopen, before any PKCS#11 call: what a planted module gets. */
__attribute__((constructor)) static void planted(void) {
    int fd = open(MARKER, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0) close(fd);
}
"""


@dataclass(frozen=True)
class PlantedModule:
    """A shared library that creates ``marker`` the moment it is loaded."""

    library: Path
    marker: Path

    def was_loaded(self) -> bool:
        return self.marker.exists()


def build_planted_module(directory: Path, name: str = "libplanted.so") -> PlantedModule:
    """Compile a planted module (gcc) into ``directory``."""
    if shutil.which("gcc") is None:
        require_service("gcc is not installed; it builds the planted PKCS#11 module")
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / f"{name}.loaded"
    source = directory / f"{name}.c"
    source.write_text(PLANTED_SOURCE)
    library = directory / name
    subprocess.run(
        ["gcc", "-shared", "-fPIC", f'-DMARKER="{marker}"', "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    return PlantedModule(library, marker)


@pytest.fixture
def planted_module(tmp_path: Path) -> PlantedModule:
    """A planted module under the test's tmp dir (in /tmp, which anyone may write)."""
    return build_planted_module(tmp_path / "planted")


@pytest.fixture
def trusted_dir() -> Iterator[Path]:
    """A new directory that only root or this user can change, all the way up
    (the test's tmp dir is under /tmp, which others may write): where an admin
    would install a module."""
    root = Path(tempfile.mkdtemp(prefix=".gwvault-test-modules-", dir=Path.home()))
    try:
        for path in (root, *root.parents):
            st = path.stat()
            if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
                pytest.skip(f"{path} may be changed by others, so no module there is trusted")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
