"""The audit tests' shared fixture: a vault of each key type holding the tamper matrix's trail."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_keys.gateway_identity import GatewayCertificate, KeyType
from tests.conftest import make_context
from tests.vault.audit.trails import ROTATED_LAST, RotatedExport, build_trail, write_export
from vault.gateway import Gateway
from vault.keys.certificates import CertificateService


@pytest.fixture
def trail_dir(any_data_dir: Path) -> Path:
    """250 entries, checkpoints at 100 and 200."""
    with Gateway.open(any_data_dir, make_context()) as gateway:
        build_trail(gateway)
        assert [c.seq for c in gateway.store.audit_checkpoints()] == [100, 200]
    return any_data_dir


@pytest.fixture
def rotated(trail_dir: Path, key_type: KeyType, tmp_path: Path) -> RotatedExport:
    """The trail, a rotation to a key pair of the other type at 251, entries up
    to 320 (a checkpoint at 300 by the new key) and the export at 321."""
    path = tmp_path / "rotated.jsonl"
    other: KeyType = "rsa-3072" if key_type == "ec-p256" else "ec-p256"
    with Gateway.open(trail_dir, make_context()) as gateway:
        old = gateway.certificate()
        old_key = gateway.private_keys[old.thumbprint]
        new = CertificateService(gateway).rotate(other)
        build_trail(gateway, ROTATED_LAST - 1)
        write_export(gateway, path)
    return RotatedExport(path, old, old_key, new)


@pytest.fixture
def exported(trail_dir: Path, tmp_path: Path) -> tuple[Path, GatewayCertificate]:
    """An export of the 250-entry trail: it adds entry 251 and closes with a checkpoint there."""
    path = tmp_path / "audit.jsonl"
    with Gateway.open(trail_dir, make_context()) as gateway:
        write_export(gateway, path)
        return path, gateway.certificate()
