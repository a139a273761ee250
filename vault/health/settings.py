"""How often each credential is tested and how many tests run at once: the
admin's settings, sealed (a database writer who stretched the interval or
shrank the bound to nothing would silence the checks)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from agent_keys.errors import InvalidInputError
from vault.gateway import Gateway

EVERY_SETTING = "health_check_every_seconds"
CONCURRENCY_SETTING = "health_check_concurrency"
DEFAULT_EVERY_SECONDS = 86_400  # daily
SHORTEST_EVERY_SECONDS = 300
LONGEST_EVERY_SECONDS = 30 * 86_400
DEFAULT_CONCURRENCY = 4
MOST_CONCURRENCY = 64
TEST_DEADLINE_SECONDS = 10.0
"""Each scheduled test's whole deadline (lookup, connect, TLS, login, query)."""


@dataclass(frozen=True)
class HealthSettings:
    every_seconds: int = DEFAULT_EVERY_SECONDS
    concurrency: int = DEFAULT_CONCURRENCY

    def __post_init__(self) -> None:
        if not SHORTEST_EVERY_SECONDS <= self.every_seconds <= LONGEST_EVERY_SECONDS:
            raise InvalidInputError("credentials are tested every 5m to 30d")
        if not 1 <= self.concurrency <= MOST_CONCURRENCY:
            raise InvalidInputError(f"the tests that run at once must be 1 to {MOST_CONCURRENCY}")


def parse_concurrency(text: str) -> int:
    """A concurrency bound as typed (1 to 64); ``InvalidInputError`` else."""
    if not text.isascii() or not text.isdigit() or len(text) > 3:
        raise InvalidInputError(f"the tests that run at once must be 1 to {MOST_CONCURRENCY}")
    return HealthSettings(concurrency=int(text)).concurrency


def load_health_settings(gateway: Gateway) -> HealthSettings:
    """The stored settings (sealed rows: ``TamperedRowError`` if altered), defaults else."""
    every = _stored_int(gateway, EVERY_SETTING)
    concurrency = _stored_int(gateway, CONCURRENCY_SETTING)
    try:
        return HealthSettings(every or DEFAULT_EVERY_SECONDS, concurrency or DEFAULT_CONCURRENCY)
    except InvalidInputError:
        return HealthSettings()


def save_health_settings(gateway: Gateway, settings: HealthSettings) -> None:
    with gateway.store.write():
        gateway.rows.set_setting(EVERY_SETTING, str(settings.every_seconds))
        gateway.rows.set_setting(CONCURRENCY_SETTING, str(settings.concurrency))
        gateway.audit.record(
            "policy.changed", gateway.gateway_id, health_check_every=settings.every_seconds,
            health_check_concurrency=settings.concurrency,
        )  # fmt: skip


def changed_health_settings(
    gateway: Gateway, every: datetime.timedelta | None, concurrency: int | None
) -> HealthSettings:
    """The stored settings with ``every`` and/or ``concurrency`` changed, saved
    (checked first: ``InvalidInputError`` and nothing written if out of range)."""
    with gateway.store.write():
        current = load_health_settings(gateway)
        seconds = int(every.total_seconds()) if every is not None else current.every_seconds
        changed = HealthSettings(seconds, concurrency or current.concurrency)
        save_health_settings(gateway, changed)
    return changed


def _stored_int(gateway: Gateway, key: str) -> int | None:
    raw = gateway.rows.setting(key)
    return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None
