"""Where a PKCS#11 module lies and what its bytes are, checked without loading it (T-HSM-8)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, InvalidInputError, KeyBackendError
from agent_keys.pkcs11_module import check_module, inspect_module
from tests.softhsm_fixtures import PlantedModule, SoftHsm


def test_the_softhsm_module_behind_its_symlink_is_accepted_and_hashed(softhsm: SoftHsm) -> None:
    found = inspect_module(softhsm.module)
    assert found.resolved == os.path.realpath(softhsm.module)
    assert found.sha256 == hashlib.sha256(Path(found.resolved).read_bytes()).hexdigest()
    assert check_module(softhsm.module, found.sha256) == found


def test_relative_links_and_dot_dot_resolve_like_the_kernel(
    trusted_dir: Path, planted_module: PlantedModule
) -> None:
    (trusted_dir / "lib" / "pkcs11").mkdir(parents=True)
    shutil.copy(planted_module.library, trusted_dir / "lib" / "real.so")
    (trusted_dir / "lib" / "pkcs11" / "module.so").symlink_to("../real.so")
    (trusted_dir / "current").symlink_to("lib/pkcs11")
    found = inspect_module(f"{trusted_dir}/current/./module.so")
    assert found.resolved == str(trusted_dir / "lib" / "real.so")
    assert not planted_module.was_loaded()


def test_other_bytes_than_the_trusted_ones_are_refused(softhsm: SoftHsm) -> None:
    with pytest.raises(KeyBackendError, match="trust-module"):
        check_module(softhsm.module, "0" * 64)


def test_a_module_path_that_names_no_module_is_refused(trusted_dir: Path) -> None:
    (trusted_dir / "loop").symlink_to("loop")
    (trusted_dir / "dir").mkdir()
    cases = {
        "relative.so": InvalidInputError,
        f"{trusted_dir}/missing.so": KeyBackendError,
        f"{trusted_dir}/loop": KeyBackendError,
        f"{trusted_dir}/dir": KeyBackendError,
        f"{trusted_dir}/dir/../missing/x.so": KeyBackendError,
    }
    for path, error in cases.items():
        with pytest.raises(error):
            inspect_module(path)


def _others_may_write(path: Path) -> None:
    path.chmod(path.stat().st_mode | 0o020)


def _give_away(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    os.chown(path, 65534, 65534, follow_symlinks=False)


@pytest.mark.parametrize(
    "loosen",
    ["module", "directory", "root of the chain", "module owner", "directory owner", "link owner"],
)
def test_a_module_someone_else_could_change_is_refused(
    trusted_dir: Path, planted_module: PlantedModule, loosen: str
) -> None:
    directory = trusted_dir / "vendor"
    directory.mkdir()
    module = directory / "libvendor.so"
    shutil.copy(planted_module.library, module)
    link = trusted_dir / "libvendor.so"
    link.symlink_to(module)
    change = {
        "module": lambda: _others_may_write(module),
        "directory": lambda: _others_may_write(directory),
        "root of the chain": lambda: _others_may_write(trusted_dir),
        "module owner": lambda: _give_away(module),
        "directory owner": lambda: _give_away(directory),
        "link owner": lambda: _give_away(link),
    }
    try:
        change[loosen]()
        with pytest.raises(AccessDeniedError, match="refusing to load"):
            inspect_module(str(link))
    finally:
        trusted_dir.chmod(0o700)  # so the fixture's own clean-up is not refused
    assert not planted_module.was_loaded()


def test_a_module_in_a_world_writable_directory_is_refused(planted_module: PlantedModule) -> None:
    # The test's tmp dir is under /tmp (1777): anyone could have put it there.
    with pytest.raises(AccessDeniedError, match="writable by group or others"):
        inspect_module(str(planted_module.library))
