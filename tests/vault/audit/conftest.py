"""The audit tests' shared fixtures: a vault of each key type holding the tamper
matrix's trail, and exports of it.

Building a trail takes a few hundred appends (and a rotation, an RSA key), so
each export is built once per key type and session and copied for every test.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.gateway_identity import GatewayCertificate, KeyType
from tests.conftest import make_context
from tests.store_engines import EngineVaults
from tests.vault.audit.trails import ROTATED_LAST, RotatedExport, build_trail, write_export
from vault.gateway import Gateway
from vault.keys.certificates import CertificateService


@pytest.fixture
def trail_dir(
    vaults: EngineVaults,
    copy_vault: Callable[[Path, Path], Path],
    key_type: KeyType,
    tmp_path: Path,
) -> Path:
    """250 entries, checkpoints at 100 and 200 (built once per engine and key type)."""
    template = vaults.derived(f"trail-{key_type}", vaults.initialized(key_type), _with_trail)
    return copy_vault(template, tmp_path / "data")


def _with_trail(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        build_trail(gateway)
        assert [c.seq for c in gateway.store.audit_checkpoints()] == [100, 200]


@pytest.fixture(scope="session")
def _export_templates(
    vault_templates: dict[KeyType, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[KeyType, tuple[bytes, GatewayCertificate]]:
    made = {}
    for key_type, template in vault_templates.items():
        work = tmp_path_factory.mktemp(f"exported-{key_type}")
        shutil.copytree(template, work / "data")
        with Gateway.open(work / "data", make_context()) as gateway:
            build_trail(gateway)
            write_export(gateway, work / "audit.jsonl")
            made[key_type] = ((work / "audit.jsonl").read_bytes(), gateway.certificate())
    return made


@pytest.fixture
def exported(
    _export_templates: dict[KeyType, tuple[bytes, GatewayCertificate]],
    key_type: KeyType,
    tmp_path: Path,
) -> tuple[Path, GatewayCertificate]:
    """An export of the 250-entry trail: it adds entry 251 and closes with a checkpoint there."""
    data, certificate = _export_templates[key_type]
    path = tmp_path / "audit.jsonl"
    path.write_bytes(data)
    return path, certificate


@pytest.fixture(scope="session")
def _rotated_templates(
    vault_templates: dict[KeyType, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[KeyType, RotatedExport]:
    made = {}
    for key_type, template in vault_templates.items():
        work = tmp_path_factory.mktemp(f"rotated-{key_type}")
        shutil.copytree(template, work / "data")
        other: KeyType = "rsa-3072" if key_type == "ec-p256" else "ec-p256"
        with Gateway.open(work / "data", make_context()) as gateway:
            build_trail(gateway)
            old = gateway.certificate()
            old_key = gateway.private_keys[old.thumbprint]
            new = CertificateService(gateway).rotate(other)
            build_trail(gateway, ROTATED_LAST - 1)
            write_export(gateway, work / "rotated.jsonl")
        made[key_type] = RotatedExport(work / "rotated.jsonl", work / "data", old, old_key, new)
    return made


@pytest.fixture
def rotated(
    _rotated_templates: dict[KeyType, RotatedExport], key_type: KeyType, tmp_path: Path
) -> RotatedExport:
    """The trail, a rotation to a key pair of the other type at 251, entries up
    to 320 (a checkpoint at 300 by the new key) and the export at 321; the
    export and the vault are this test's own copies."""
    template = _rotated_templates[key_type]
    path, data_dir = tmp_path / "rotated.jsonl", tmp_path / "rotated-data"
    shutil.copy(template.path, path)
    shutil.copytree(template.data_dir, data_dir)
    return RotatedExport(path, data_dir, template.old, template.old_key, template.new)
