"""The audit tests' shared fixture: a vault of each key type holding the tamper matrix's trail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_context
from tests.vault.audit.trails import build_trail
from vault.gateway import Gateway


@pytest.fixture
def trail_dir(any_data_dir: Path) -> Path:
    """250 entries, checkpoints at 100 and 200."""
    with Gateway.open(any_data_dir, make_context()) as gateway:
        build_trail(gateway)
        assert [c.seq for c in gateway.store.audit_checkpoints()] == [100, 200]
    return any_data_dir
