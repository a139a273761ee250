"""A vault opened by the local admin on a clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vault.access.test_accounts import Clock
from vault.context import RequestContext
from vault.gateway import Gateway


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vault(data_dir: Path, clock: Clock) -> Gateway:
    return Gateway.open(data_dir, RequestContext(actor="os:admin", channel="cli", clock=clock))
