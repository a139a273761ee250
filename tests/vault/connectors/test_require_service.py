"""require_service: skip where a service is missing, fail where CI requires it."""

from __future__ import annotations

import pytest

from tests.service_fixtures import REQUIRE_SERVICES_ENV, require_service


@pytest.mark.parametrize("value", [None, "", "0", "yes"])
def test_skips_unless_required(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(REQUIRE_SERVICES_ENV, raising=False)
    else:
        monkeypatch.setenv(REQUIRE_SERVICES_ENV, value)
    with pytest.raises(pytest.skip.Exception, match="no server here"):
        require_service("no server here")


def test_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_SERVICES_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no server here"):
        require_service("no server here")
